//! A server's datagram session answering Data frames itself (`SessionConfig::echo_data`): the
//! server echoes Data on its channel (docs/PROTOCOL.md section 5.8), so a Data frame delivered in
//! its channel's order is queued back on that channel where it is delivered, its payload shared
//! with the datagram it came in: no event, no hub, no output queue between sessions.

use super::super::echo::Echo;
use super::super::event::{Event, EventQueue};
use super::super::outbox::{Encoded, Outbox};
use super::Session;
use crate::wire::{Frame, FrameBody};

/// Where a delivered frame goes: queued back by the session if it is a Data frame the session
/// answers itself now (echoing is on, nothing handed to the application may still be answered,
/// and the send queue has room), else to the application as an event, which holds later echoes
/// until [`Session::resume_echo`]. Returns whether the session answered it.
pub(super) fn echo_or_hand(
    frame: Frame,
    established: bool,
    echo: &mut Echo,
    outbox: &mut Outbox,
    events: &mut EventQueue,
) -> bool {
    let channel = frame.channel;
    match frame.body {
        FrameBody::Data(d)
            if echo.is_ready()
                && established
                && outbox.has_room(channel, Encoded::data_len(&d.payload)) =>
        {
            // Room was checked: queueing cannot fail.
            outbox
                .queue(channel, Encoded::data(channel, d.payload))
                .is_ok()
        }
        body => {
            echo.hold();
            events.push_back(Event::Frame(Frame { body, ..frame }));
            false
        }
    }
}

impl Session {
    /// How many Data frames the session answered itself since the last call
    /// (`SessionConfig::echo_data`): the driver counts them as frames in and out.
    pub fn take_echoed(&mut self) -> u64 {
        core::mem::take(&mut self.echoed)
    }

    /// The application has queued its answers to every frame it was handed: Data frames may be
    /// echoed by the session again. Until then they are handed over as frames, so that an echo
    /// never overtakes the answer to a frame before it on its channel.
    pub fn resume_echo(&mut self) {
        self.echo.resume();
    }

    /// Data frames go to the application from now until [`Session::resume_echo`]: for a driver
    /// that hands this session frames at a time when answers to earlier ones may not be queued.
    pub fn hold_echo(&mut self) {
        self.echo.hold();
    }
}
