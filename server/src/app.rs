//! What the server does with a message from an established session, until the hub lands: answer
//! `sys.ping`, echo Data frames on their channel, and refuse the rest with a reason.

use bytes::Bytes;
use framewire_protocol::wire::{
    Data, ErrorFrame, Frame, FrameBody, Reason, Response, Status, Text,
};

/// The reply to `frame`, if it gets one.
pub fn respond(frame: Frame) -> Option<Frame> {
    let channel = frame.channel;
    let reply = match frame.body {
        FrameBody::Data(d) => Frame::new(Data { payload: d.payload }),
        FrameBody::Request(r) => {
            let (status, payload) = if r.target == "sys.ping" {
                (Status::OK, Bytes::from_static(b"pong"))
            } else {
                (
                    Status::NO_RESPONDER,
                    Bytes::from_static(b"no service of that name"),
                )
            };
            Frame::new(Response {
                id: r.id,
                status,
                payload,
            })
        }
        other => Frame::new(ErrorFrame {
            reason: Reason::UNKNOWN_KIND,
            refused_kind: other.kind() as u8,
            message: Text::from_static("not served by this server yet"),
        }),
    };
    Some(reply.on_channel(channel))
}

#[cfg(test)]
mod tests {
    use framewire_protocol::wire::{Request, Subscribe};

    use super::*;

    #[test]
    fn echo_ping_and_refusals() {
        let echo = respond(
            Frame::new(Data {
                payload: Bytes::from_static(b"x"),
            })
            .on_channel(4),
        )
        .unwrap();
        assert_eq!(echo.channel, 4);
        assert!(matches!(echo.body, FrameBody::Data(d) if d.payload == "x"));
        let ping = respond(Frame::new(Request {
            id: 3,
            timeout_ms: 0,
            target: Text::from("sys.ping"),
            payload: Bytes::new(),
        }))
        .unwrap();
        assert!(matches!(ping.body, FrameBody::Response(r) if r.id == 3 && r.status == Status::OK));
        let other = respond(Frame::new(Request {
            id: 4,
            timeout_ms: 0,
            target: Text::from("lamp"),
            payload: Bytes::new(),
        }))
        .unwrap();
        assert!(matches!(other.body, FrameBody::Response(r) if r.status == Status::NO_RESPONDER));
        let sub = respond(Frame::new(Subscribe {
            id: 1,
            filter: Text::from("a"),
        }))
        .unwrap();
        assert!(matches!(sub.body, FrameBody::Error(e) if e.refused_kind == 0x30));
    }
}
