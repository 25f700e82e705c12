//! How many S3 requests are in flight: found by measuring, not fixed.
//!
//! At S3's first-byte latency (tens of milliseconds) the object rate of a fixed number
//! of requests in flight is that number over the latency, whatever the CPU: an
//! organization trail's tiny objects need hundreds in flight. Too many, and requests
//! queue (in the client's runtime when its CPU is the bound, at S3 when a prefix is
//! throttled) or S3 answers 503 SlowDown. The [`Limiter`] adapts the number, as TCP's
//! congestion control and Netflix's concurrency-limits (Gradient2) do:
//!
//! - **Slow start:** the limit doubles every window while the round-trip time (RTT) of
//!   requests stays near the lowest seen (`TOLERANCE`×): more in flight was not queued.
//! - **Gradient:** after that, each window sets `limit × gradient + √limit`, smoothed,
//!   where `gradient = TOLERANCE × base RTT / window RTT` clamped to [0.5, 1]: the limit
//!   grows by √limit while requests do not queue, and shrinks in proportion once they
//!   do. The base RTT is the lowest window mean seen, aged slowly so that a lasting
//!   change of latency is learnt.
//! - **Throttling** (SlowDown, 503) cuts the limit to `THROTTLE_CUT` of itself and ends
//!   slow start; a transport failure or timeout cuts it less (`FAILURE_CUT`). At most
//!   one cut per window's worth of time, so a burst of 503s answering the same overload
//!   is one cut, not hundreds.
//! - A window where demand never reached half the limit (the parser, not the network,
//!   was the bound) does not move the limit up: growth needs evidence.
//!
//! A window is the completions of about half the limit (at least `MIN_WINDOW`). The
//! limit stays within `[min, max]`; `max` is `--concurrency`.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Round trips may grow to this multiple of the base before the limit stops growing:
/// some queueing is what hides latency.
const TOLERANCE: f64 = 2.0;
/// Share of the new estimate taken each window (the rest is the old limit).
const SMOOTHING: f64 = 0.25;
/// The least number of completions in a window.
const MIN_WINDOW: u32 = 8;
/// The base RTT's ageing, per second: a lasting rise of latency is learnt in about a
/// minute, and a standing queue cannot pass itself off as the base any faster.
const BASE_AGEING: f64 = 0.01;
/// The limit after a throttling answer, as a share of the limit before.
const THROTTLE_CUT: f64 = 0.5;
/// The limit after a transport failure or timeout, as a share of the limit before.
const FAILURE_CUT: f64 = 0.8;

/// How one request ended, for the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An answer (success, or an error that says nothing of load: 404, 403).
    Answered,
    /// 503 SlowDown and its kin: the server asks for fewer requests.
    Throttled,
    /// The connection failed or the attempt timed out.
    Failed,
}

/// The controller's state, without clocks or locks (tested alone).
#[derive(Debug, Clone)]
pub struct Control {
    limit: f64,
    min: f64,
    max: f64,
    slow_start: bool,
    base_rtt: Option<f64>,
    window: Window,
    last_cut: Option<Instant>,
    last_window: Option<Instant>,
    /// Limits at the end of each window, the highest, and the cuts made (for the
    /// summary and tests).
    pub peak: usize,
    pub cuts: u64,
}

#[derive(Debug, Clone, Default)]
struct Window {
    completions: u32,
    rtt_sum: f64,
    /// The most requests in flight seen during the window.
    demand: usize,
}

impl Control {
    /// A controller starting at `initial` in flight, within `[min, max]`.
    pub fn new(initial: usize, min: usize, max: usize) -> Self {
        let max = max.max(1) as f64;
        let min = (min.max(1) as f64).min(max);
        let limit = (initial as f64).clamp(min, max);
        Self {
            limit,
            min,
            max,
            slow_start: true,
            base_rtt: None,
            window: Window::default(),
            last_cut: None,
            last_window: None,
            peak: limit as usize,
            cuts: 0,
        }
    }

    /// Requests allowed in flight now.
    pub fn limit(&self) -> usize {
        self.limit as usize
    }

    /// Notes that `in_flight` requests are in flight (the demand the window saw).
    pub fn in_flight(&mut self, in_flight: usize) {
        self.window.demand = self.window.demand.max(in_flight);
    }

    /// One request ended at `now` after `rtt`, with `outcome`.
    pub fn sample(&mut self, rtt: Duration, outcome: Outcome, now: Instant) {
        match outcome {
            Outcome::Answered => {
                self.window.completions += 1;
                self.window.rtt_sum += rtt.as_secs_f64();
                let size = ((self.limit / 2.0) as u32).max(MIN_WINDOW);
                if self.window.completions >= size {
                    self.close_window(now);
                }
            }
            Outcome::Throttled => self.cut(THROTTLE_CUT, now),
            Outcome::Failed => self.cut(FAILURE_CUT, now),
        }
    }

    fn cut(&mut self, share: f64, now: Instant) {
        // One cut per round trip: the answers to one overload arrive together.
        let quiet = self
            .base_rtt
            .map(|b| Duration::from_secs_f64((b * TOLERANCE).min(1.0)))
            .unwrap_or(Duration::from_millis(50));
        if self
            .last_cut
            .is_some_and(|t| now.saturating_duration_since(t) < quiet)
        {
            return;
        }
        self.last_cut = Some(now);
        self.slow_start = false;
        self.limit = (self.limit * share).clamp(self.min, self.max);
        self.cuts += 1;
        self.window = Window::default();
    }

    fn close_window(&mut self, now: Instant) {
        let w = std::mem::take(&mut self.window);
        let since = self
            .last_window
            .map(|t| now.saturating_duration_since(t).as_secs_f64())
            .unwrap_or(0.0);
        self.last_window = Some(now);
        let rtt = w.rtt_sum / f64::from(w.completions.max(1));
        if rtt <= 0.0 {
            return;
        }
        let base = match self.base_rtt {
            Some(b) => (b * (1.0 + BASE_AGEING * since)).min(rtt),
            None => rtt,
        };
        self.base_rtt = Some(base);
        let gradient = (TOLERANCE * base / rtt).clamp(0.5, 1.0);
        // Demand below half the limit: the limit was not what bounded the rate.
        let bound = w.demand as f64 * 2.0 >= self.limit;
        if self.slow_start {
            if gradient < 1.0 {
                self.slow_start = false;
                self.limit = (self.limit * gradient).clamp(self.min, self.max);
            } else if bound {
                self.limit = (self.limit * 2.0).clamp(self.min, self.max);
            }
        } else {
            let target = self.limit * gradient + self.limit.sqrt();
            let target = if bound {
                target
            } else {
                target.min(self.limit)
            };
            self.limit =
                (self.limit * (1.0 - SMOOTHING) + target * SMOOTHING).clamp(self.min, self.max);
        }
        self.peak = self.peak.max(self.limit as usize);
    }
}

/// A [`Control`] shared by the tasks of one source: permits to send a request.
#[derive(Debug)]
pub struct Limiter {
    state: Mutex<State>,
    wake: tokio::sync::Notify,
}

#[derive(Debug)]
struct State {
    control: Control,
    in_flight: usize,
    peak_in_flight: usize,
}

impl Limiter {
    pub fn new(control: Control) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                control,
                in_flight: 0,
                peak_in_flight: 0,
            }),
            wake: tokio::sync::Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain numbers: a panic elsewhere cannot leave it torn.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the controller's state.
    pub fn snapshot(&self) -> Control {
        self.lock().control.clone()
    }

    /// The most requests in flight at once so far.
    pub fn peak_in_flight(&self) -> usize {
        self.lock().peak_in_flight
    }

    /// Waits until one more request may be sent.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.lock();
                if s.in_flight < s.control.limit() {
                    s.in_flight += 1;
                    let n = s.in_flight;
                    s.peak_in_flight = s.peak_in_flight.max(n);
                    s.control.in_flight(n);
                    return Permit {
                        limiter: self.clone(),
                        started: Instant::now(),
                        open: true,
                    };
                }
                // At the limit: the demand is there.
                let n = s.in_flight + 1;
                s.control.in_flight(n);
            }
            notified.await;
        }
    }

    fn release(&self, sample: Option<(Duration, Outcome)>) {
        {
            let mut s = self.lock();
            s.in_flight = s.in_flight.saturating_sub(1);
            if let Some((rtt, outcome)) = sample {
                s.control.sample(rtt, outcome, Instant::now());
            }
        }
        self.wake.notify_waiters();
    }
}

/// Leave to send one request; [`Permit::done`] reports how it went. Dropped without
/// a report (a cancelled request), it only frees its place.
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<Limiter>,
    started: Instant,
    open: bool,
}

impl Permit {
    /// The request ended with `outcome`; its round trip is the time since the permit
    /// was granted.
    pub fn done(mut self, outcome: Outcome) {
        self.open = false;
        self.limiter
            .release(Some((self.started.elapsed(), outcome)));
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.open {
            self.limiter.release(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives a controller against a server model: `rtt(in_flight)` gives a request's
    /// round trip; `throttle(in_flight)` whether the server answers SlowDown. Returns
    /// the limit after `rounds` windows' worth of requests.
    fn drive(
        c: &mut Control,
        rounds: usize,
        rtt: impl Fn(usize) -> f64,
        throttle: impl Fn(usize) -> bool,
    ) -> usize {
        let mut now = Instant::now();
        for _ in 0..rounds {
            let n = c.limit();
            let r = rtt(n);
            // A round: `n` requests in flight complete after `r`.
            c.in_flight(n);
            now += Duration::from_secs_f64(r);
            for _ in 0..n {
                let outcome = if throttle(n) {
                    Outcome::Throttled
                } else {
                    Outcome::Answered
                };
                c.sample(Duration::from_secs_f64(r), outcome, now);
            }
        }
        c.limit()
    }

    /// A server with `latency` seconds before the first byte and a client that can
    /// handle `rate` objects a second: beyond `latency × rate` in flight, requests
    /// queue.
    fn server(latency: f64, rate: f64) -> impl Fn(usize) -> f64 {
        move |n| latency.max(n as f64 / rate) + 1.0 / rate
    }

    #[test]
    fn grows_under_latency_to_what_hides_it() {
        // 30 ms per request, 5,000 objects/s of CPU: ~150 in flight are needed.
        let mut c = Control::new(16, 2, 512);
        let limit = drive(&mut c, 200, server(0.030, 5000.0), |_| false);
        assert!(
            (150..=512).contains(&limit),
            "the limit reached {limit} (needs >= 150 to hide 30 ms at 5,000/s)"
        );
        // Throughput at that limit is within 10 % of the CPU bound.
        let rate = limit as f64 / server(0.030, 5000.0)(limit);
        assert!(rate > 4500.0, "{rate} objects/s");
    }

    #[test]
    fn stays_low_when_the_cpu_not_the_latency_is_the_bound() {
        // No latency: a few in flight keep the CPU busy; hundreds only queue.
        let mut c = Control::new(16, 2, 512);
        let limit = drive(&mut c, 300, server(0.0002, 5000.0), |_| false);
        assert!(
            limit <= 64,
            "the limit grew to {limit} with nothing to hide"
        );
    }

    #[test]
    fn shrinks_under_slowdown_and_grows_back_after() {
        let mut c = Control::new(16, 2, 512);
        let high = drive(&mut c, 100, server(0.030, 20000.0), |_| false);
        assert!(high >= 256, "{high}");
        // The server throttles above 64 in flight.
        let low = drive(&mut c, 100, server(0.030, 20000.0), |n| n > 64);
        assert!(
            low <= 80,
            "under SlowDown the limit fell from {high} to {low}"
        );
        assert!(c.cuts > 0);
        let again = drive(&mut c, 200, server(0.030, 20000.0), |_| false);
        assert!(
            again > low * 2,
            "after throttling it grows back: {low} -> {again}"
        );
    }

    #[test]
    fn a_burst_of_throttling_answers_is_one_cut() {
        let mut c = Control::new(256, 2, 512);
        let now = Instant::now();
        for _ in 0..200 {
            c.sample(Duration::from_millis(30), Outcome::Throttled, now);
        }
        assert_eq!(c.limit(), 128);
        assert_eq!(c.cuts, 1);
        c.sample(
            Duration::from_millis(30),
            Outcome::Throttled,
            now + Duration::from_secs(1),
        );
        assert_eq!(c.limit(), 64);
    }

    #[test]
    fn no_growth_without_demand() {
        let mut c = Control::new(16, 2, 512);
        let mut now = Instant::now();
        for _ in 0..100 {
            // Only 4 requests ever in flight (the parser is the bound).
            c.in_flight(4);
            now += Duration::from_millis(30);
            for _ in 0..8 {
                c.sample(Duration::from_millis(30), Outcome::Answered, now);
            }
        }
        assert_eq!(c.limit(), 16);
    }

    #[test]
    fn stays_within_its_bounds() {
        let mut c = Control::new(1000, 4, 8);
        assert_eq!(c.limit(), 8);
        drive(&mut c, 50, server(0.030, 1e6), |_| false);
        assert_eq!(c.limit(), 8);
        drive(&mut c, 50, server(0.030, 1e6), |_| true);
        assert_eq!(c.limit(), 4);
    }

    #[test]
    fn permits_hold_the_limit_and_wake_waiters() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let l = Limiter::new(Control::new(2, 1, 2));
            let a = l.acquire().await;
            let _b = l.acquire().await;
            let l2 = l.clone();
            let third = tokio::spawn(async move { l2.acquire().await });
            tokio::task::yield_now().await;
            assert!(!third.is_finished(), "a third permit waits at limit 2");
            a.done(Outcome::Answered);
            let c = tokio::time::timeout(Duration::from_secs(5), third)
                .await
                .expect("woken")
                .expect("task");
            drop(c);
            assert_eq!(l.lock().in_flight, 1);
        });
    }
}
