//! Downloads ahead of the parser: GETs in the order the objects will be read, as many
//! in flight as the [`Limiter`] allows, with the bytes downloaded but not yet read
//! capped (`buffer` bytes; one object at a time when it alone is larger).
//!
//! Objects announced by [`Prefetch::plan`] wait in a queue. One driver task takes them
//! in order: it waits for room in the buffer, then for a permit, then spawns the GET.
//! Each object has a slot the reader waits on (only that reader is woken when it is
//! filled). A reader asking for an object whose GET has not started yet takes it from
//! the queue and fetches it itself, so reading never waits on the buffer it would free.
//!
//! [`Limiter`]: super::control::Limiter

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::Inner;

/// Where one announced object stands.
#[derive(Debug)]
enum SlotState {
    Queued,
    Started,
    Done(Result<Vec<u8>, String>),
    /// Handed to the reader (or taken by it before its GET started).
    Taken,
}

#[derive(Debug)]
struct Slot {
    key: String,
    size: u64,
    state: Mutex<SlotState>,
    filled: Condvar,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, Default)]
struct Plan {
    /// Announced objects whose GET has not started, in reading order.
    queue: VecDeque<Arc<Slot>>,
    /// Announced objects not handed to the reader yet, by key.
    slots: HashMap<String, Arc<Slot>>,
    /// Bytes of objects started and not yet handed to the reader.
    held: u64,
    driving: bool,
}

/// The download-ahead state of one source.
#[derive(Debug)]
pub(super) struct Prefetch {
    plan: Mutex<Plan>,
    /// Wakes the driver: objects queued, or buffer room freed.
    wake: tokio::sync::Notify,
    /// The cap on `held`.
    buffer: u64,
}

impl Prefetch {
    pub fn new(buffer: u64) -> Self {
        Self {
            plan: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            buffer: buffer.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `objects` (key relative to the source, size) for download, and starts
    /// the driver on `runtime` the first time. A key already announced is not queued
    /// twice.
    pub fn plan(
        self: &Arc<Self>,
        inner: &Arc<Inner>,
        runtime: &tokio::runtime::Handle,
        objects: impl Iterator<Item = (String, u64)>,
    ) {
        let start = {
            let mut plan = self.lock();
            for (key, size) in objects {
                if plan.slots.contains_key(&key) {
                    continue;
                }
                let slot = Arc::new(Slot {
                    key: key.clone(),
                    size,
                    state: Mutex::new(SlotState::Queued),
                    filled: Condvar::new(),
                });
                plan.slots.insert(key, slot.clone());
                plan.queue.push_back(slot);
            }
            !std::mem::replace(&mut plan.driving, true)
        };
        if start {
            runtime.spawn(drive(self.clone(), inner.clone()));
        }
        self.wake.notify_one();
    }

    /// The bytes of `key`, waiting for its download. `None` when it was not announced
    /// or its download has not started: the caller fetches it (and the driver will
    /// not).
    pub fn take(&self, key: &str) -> Option<Result<Vec<u8>, String>> {
        let slot = self.lock().slots.remove(key)?;
        let mut state = slot.lock();
        loop {
            match std::mem::replace(&mut *state, SlotState::Taken) {
                // Not started: the driver skips it now; the caller fetches it.
                SlotState::Queued => return None,
                SlotState::Started => {
                    *state = SlotState::Started;
                    state = slot.filled.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                SlotState::Done(r) => {
                    drop(state);
                    let mut plan = self.lock();
                    plan.held = plan.held.saturating_sub(slot.size);
                    drop(plan);
                    self.wake.notify_one();
                    return Some(r);
                }
                SlotState::Taken => {
                    return Some(Err(format!("{} was handed over twice", slot.key)));
                }
            }
        }
    }
}

/// The driver: starts the queued GETs in order, within the buffer and the limiter.
async fn drive(p: Arc<Prefetch>, inner: Arc<Inner>) {
    loop {
        let slot = loop {
            let notified = p.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut plan = p.lock();
                // Taken by the reader before their GET started.
                while plan
                    .queue
                    .front()
                    .is_some_and(|s| matches!(*s.lock(), SlotState::Taken))
                {
                    plan.queue.pop_front();
                }
                let fits = plan
                    .queue
                    .front()
                    .map(|s| plan.held == 0 || plan.held + s.size <= p.buffer);
                if fits == Some(true)
                    && let Some(slot) = plan.queue.pop_front()
                {
                    plan.held += slot.size;
                    inner
                        .stats
                        .peak_held
                        .fetch_max(plan.held, Ordering::Relaxed);
                    break slot;
                }
            }
            notified.await;
        };
        let permit = inner.limiter.acquire().await;
        {
            let mut state = slot.lock();
            if !matches!(*state, SlotState::Queued) {
                // The reader took it meanwhile and fetches it itself.
                drop(state);
                let mut plan = p.lock();
                plan.held = plan.held.saturating_sub(slot.size);
                continue;
            }
            *state = SlotState::Started;
        }
        let inner = inner.clone();
        tokio::spawn(async move {
            let r = inner.get(&slot.key, Some(permit)).await;
            *slot.lock() = SlotState::Done(r);
            slot.filled.notify_one();
        });
    }
}
