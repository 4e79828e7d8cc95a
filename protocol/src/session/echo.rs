//! Whether a server's session answers Data frames itself (`SessionConfig::echo_data`): the server
//! echoes Data on its channel (docs/PROTOCOL.md section 5.8), so a session can queue the answer
//! the moment the frame is read, with no event, no hub and no re-encoding of the payload. Both
//! kinds of session keep this state; it is what keeps an echo from overtaking the answer to a
//! frame before it.

/// Where a session's own echoing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Echo {
    Off,
    Ready,
    /// A frame went to the application, which may still be answering it: Data frames go the same
    /// way until [`Echo::resume`], so no echo overtakes an earlier frame's answer.
    Held,
}

impl Echo {
    pub(crate) fn new(on: bool) -> Self {
        if on { Self::Ready } else { Self::Off }
    }

    /// A frame was handed to the application.
    pub(crate) fn hold(&mut self) {
        if *self == Self::Ready {
            *self = Self::Held;
        }
    }

    /// The application has queued its answers to every frame it was handed.
    pub(crate) fn resume(&mut self) {
        if *self == Self::Held {
            *self = Self::Ready;
        }
    }

    pub(crate) fn is_ready(self) -> bool {
        self == Self::Ready
    }
}

#[cfg(test)]
mod tests {
    use super::Echo;

    #[test]
    fn off_stays_off_and_held_waits_for_resume() {
        let mut off = Echo::new(false);
        off.resume();
        assert_eq!(off, Echo::Off);
        let mut e = Echo::new(true);
        assert!(e.is_ready());
        e.hold();
        assert!(!e.is_ready());
        e.hold();
        e.resume();
        assert!(e.is_ready());
    }
}
