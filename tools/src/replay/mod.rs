//! Replaying captured traffic against a live server, to find where its behaviour changed.
//!
//! [`Script::from_inspection`] reads what each captured client session did out of an
//! [`Inspection`](crate::capture::Inspection); [`replay`] re-creates those sessions against a
//! target with fresh handshakes and sends the client frames again, paced as captured (or as fast
//! as the server answers); the [`Matcher`] pairs the target's answers with the captured ones and
//! lists the differences. The script and the matcher are sans-IO; only [`replay`] opens sockets.
//!
//! What it does not do: replay traffic the capture holds only part of (a connection whose Hello
//! was not captured is skipped and counted), replay a client that vanished without a Close as
//! vanishing (each session still open when the capture ends is closed normally), or compare the
//! timing of answers (only their latency is reported).

mod driver;
mod gate;
mod matcher;
mod script;

pub use driver::{Pace, ReplayConfig, Report, replay};
pub use matcher::{Difference, Matcher, Outcome, Tally, summary};
pub use script::{Action, Script, ScriptBuilder, ScriptedSession, Step};
