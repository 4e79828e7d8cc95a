//! The baseline of the TCP comparison: the echo server most Rust users would write first, on tokio
//! with tokio-util's `LengthDelimitedCodec` (a u32 length, then the frame). A framewire stream frame
//! is such a frame (its length prefix counts the bytes after it), so the same load generator drives
//! it.
//!
//! `tokio_echo ADDR` (multi-threaded runtime, one task per connection; frames that are ready are
//! echoed together and flushed once).

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7600".into());
    let listener = TcpListener::bind(&addr).await?;
    loop {
        let (socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        tokio::spawn(async move {
            let mut framed = Framed::new(socket, LengthDelimitedCodec::new());
            // Echo every frame that is ready, then flush once: one write per batch, as a tuned
            // server would (a flush per frame would make the baseline a strawman).
            while let Some(Ok(frame)) = framed.next().await {
                if framed.feed(frame.freeze()).await.is_err() {
                    return;
                }
                while let Some(Some(Ok(frame))) = framed.next().now_or_never() {
                    if framed.feed(frame.freeze()).await.is_err() {
                        return;
                    }
                }
                if SinkExt::<bytes::Bytes>::flush(&mut framed).await.is_err() {
                    return;
                }
            }
        });
    }
}
