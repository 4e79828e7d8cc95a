//! End-to-end comparisons: framewire against the servers its users would pick instead, started as
//! processes of their own on loopback and driven the same way in the same run.
//!
//! - [`fanout`]: one publisher to many subscribers (framewire, nats-server, mosquitto).
//! - [`idle`]: server memory per idle connection.

pub mod fanout;
pub mod idle;
pub mod pubsub_wire;
pub mod systems;

/// The median of some measurements (`NaN` for none).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => f64::midpoint(xs[n / 2 - 1], xs[n / 2]),
    }
}
