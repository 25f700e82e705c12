//! A TCP proxy that adds a fixed delay to every HTTP request, for `benches/s3.sh`: the
//! kernel here has no netem, so S3's first-byte latency is played by this proxy in front
//! of a local S3 server (`rclone serve s3`).
//!
//! It does not parse HTTP. On each connection, bytes from the client that arrive while
//! no request is outstanding start a request: they are held for the delay, then
//! forwarded; the request stays outstanding until the server's first response bytes
//! come back. So every request/response exchange on a keep-alive connection costs the
//! delay once, whatever the number of packets it takes, and connections are independent
//! (thousands in flight each wait their own delay, as requests to S3 do).
//!
//!   usage: delay_proxy <listen port> <upstream host:port> <delay ms>
//! It prints `ready` once it listens.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, port, upstream, delay] = args.as_slice() else {
        eprintln!("usage: delay_proxy <listen port> <upstream host:port> <delay ms>");
        std::process::exit(2);
    };
    let delay = Duration::from_millis(delay.parse().unwrap_or(0));
    let listener = TcpListener::bind(("127.0.0.1", port.parse::<u16>().unwrap_or(0))).await?;
    println!("ready {}", listener.local_addr()?.port());
    loop {
        let (client, _) = listener.accept().await?;
        let upstream = upstream.clone();
        tokio::spawn(async move {
            if let Ok(server) = TcpStream::connect(&upstream).await {
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                relay(client, server, delay).await;
            }
        });
    }
}

async fn relay(client: TcpStream, server: TcpStream, delay: Duration) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    // A request is outstanding from its first bytes to the first bytes of its response.
    let outstanding = Arc::new(AtomicBool::new(false));
    let up = {
        let outstanding = outstanding.clone();
        async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match client_rx.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if !outstanding.swap(true, Ordering::SeqCst) && !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                if server_tx.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            let _ = server_tx.shutdown().await;
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match server_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            outstanding.store(false, Ordering::SeqCst);
            if client_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_tx.shutdown().await;
    };
    tokio::join!(up, down);
}
