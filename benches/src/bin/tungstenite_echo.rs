//! The baseline of the WebSocket comparison: the echo server most Rust users would write first,
//! tokio-tungstenite on tokio's multi-threaded runtime, one task per connection; messages that are
//! ready are echoed together and flushed once (a flush per message would make the baseline a
//! strawman). Binary messages come back as they went; nothing else is echoed.
//!
//! `tungstenite_echo ADDR`

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7601".into());
    let listener = TcpListener::bind(&addr).await?;
    loop {
        let (socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async(socket).await else {
                return;
            };
            let (mut tx, mut rx) = ws.split();
            while let Some(Ok(message)) = rx.next().await {
                let mut batch = vec![message];
                while let Some(Some(Ok(more))) = rx.next().now_or_never() {
                    batch.push(more);
                }
                for m in batch {
                    if matches!(m, Message::Binary(_)) && tx.feed(m).await.is_err() {
                        return;
                    }
                }
                if tx.flush().await.is_err() {
                    return;
                }
            }
        });
    }
}
