//! A cursor over a caller-supplied output slice.
//!
//! Encoders compute their exact length first and check it against the slice, so the writes here
//! stay in bounds by construction; what reaches a `Writer` is local data, never peer input.

#[derive(Debug)]
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn put_slice(&mut self, src: &[u8]) {
        let end = self.pos + src.len();
        self.buf[self.pos..end].copy_from_slice(src);
        self.pos = end;
    }

    pub(crate) fn put_u8(&mut self, v: u8) {
        self.put_slice(&[v]);
    }

    pub(crate) fn put_u16(&mut self, v: u16) {
        self.put_slice(&v.to_be_bytes());
    }

    pub(crate) fn put_u32(&mut self, v: u32) {
        self.put_slice(&v.to_be_bytes());
    }

    pub(crate) fn put_u64(&mut self, v: u64) {
        self.put_slice(&v.to_be_bytes());
    }

    /// The bytes written so far.
    pub(crate) fn written(&self) -> &[u8] {
        &self.buf[..self.pos]
    }
}
