//! Where the server and docs/PROTOCOL.md used to disagree, each checked against the real server
//! over sockets: the spec's word is what the server does.

use std::time::Duration;

use framewire_client::{Client, ClientOptions, PublishOptions, Transport};
use framewire_protocol::wire::ChannelKind;
use framewire_server::ServerConfig;
use framewire_tests::{DEADLINE, TestServer};

/// Section 3.4: channels a Hello does not name are reliable-ordered. A UDP subscriber whose Hello
/// names none gets a message published on channel 3 (unreliable in the publisher's layout) as a
/// reliable-ordered one, with its sequence number; the server used to apply its own default
/// layout and send it unsequenced, which such a client refuses.
#[test]
fn channels_a_hello_does_not_name_are_reliable_ordered() {
    let server = TestServer::start(ServerConfig::default());
    let mut o = ClientOptions::new(server.udp_addr(), Transport::Udp);
    o.session.channels = vec![ChannelKind::ReliableOrdered];
    let mut subscriber = Client::connect(o).unwrap();
    subscriber.subscribe("room/state").unwrap();
    let mut publisher =
        Client::connect(ClientOptions::new(server.udp_addr(), Transport::Udp)).unwrap();
    let on_3 = PublishOptions {
        channel: 3,
        ..PublishOptions::default()
    };
    publisher
        .publish_with("room/state", "x=1", on_3)
        .unwrap();
    let m = subscriber
        .next_message(DEADLINE)
        .unwrap()
        .expect("the message on channel 3");
    assert_eq!((m.channel, &m.payload[..]), (3, &b"x=1"[..]));
    assert!(subscriber.next_message(Duration::ZERO).unwrap().is_none());
}
