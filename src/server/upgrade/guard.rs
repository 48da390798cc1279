//! The client's side of the read-only WebSocket, checked header by header before any of it
//! reaches actix-ws.
//!
//! actix-ws buffers a frame until it is whole and only then compares its length with its
//! limit, so a header that announces 2^62 bytes would have it keep everything that follows.
//! The socket is read-only: a data frame (text, binary, continuation) is a policy violation
//! the moment its first byte arrives, and its payload is never read. Control frames (ping,
//! pong, close) are at most 125 bytes (RFC 6455 §5.5) and pass; anything else is a protocol
//! error. What the client can make the server hold is one header and one control frame.

/// What the guard decided about the bytes it was given.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Everything so far is allowed; keep reading.
    Pass,
    /// A data frame: its header became an empty text frame (which the socket answers with
    /// 1008); stop reading.
    DataFrame,
    /// Not a frame a client may send (unmasked, reserved bits or opcode, an oversized or
    /// fragmented control frame): stop reading, end the stream with an error (1002).
    Invalid,
}

/// A control frame's header: 2 bytes and the mask (no extended length below 126 bytes).
const HEADER: usize = 6;
/// The largest control frame payload (RFC 6455 §5.5).
const MAX_CONTROL: usize = 125;
/// What actix-ws gets instead of a data frame: a masked, empty, final text frame.
const EMPTY_TEXT: [u8; 6] = [0x81, 0x80, 0, 0, 0, 0];

/// Reads frame headers as they arrive and passes on what a read-only socket accepts.
#[derive(Default)]
pub(super) struct FrameGuard {
    header: [u8; HEADER],
    have: usize,
    /// Payload bytes of the current (control) frame still to pass on.
    payload_left: usize,
    /// Stopped: nothing more is passed on.
    stopped: bool,
}

impl FrameGuard {
    /// Appends to `out` what of `bytes` may reach actix-ws, and says whether to read on.
    pub(super) fn filter(&mut self, mut bytes: &[u8], out: &mut Vec<u8>) -> Verdict {
        if self.stopped {
            return Verdict::Invalid;
        }
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let n = self.payload_left.min(bytes.len());
                out.extend_from_slice(&bytes[..n]);
                self.payload_left -= n;
                bytes = &bytes[n..];
                continue;
            }
            self.header[self.have] = bytes[0];
            self.have += 1;
            bytes = &bytes[1..];
            match self.check_header() {
                Ok(None) => {}
                Ok(Some(payload)) => {
                    out.extend_from_slice(&self.header[..self.have]);
                    self.payload_left = payload;
                    self.have = 0;
                }
                Err(verdict) => {
                    self.stopped = true;
                    if verdict == Verdict::DataFrame {
                        out.extend_from_slice(&EMPTY_TEXT);
                    }
                    return verdict;
                }
            }
        }
        Verdict::Pass
    }

    /// The header read so far: `Ok(None)` if incomplete, `Ok(Some(payload length))` if it is
    /// a whole control frame header, `Err` if the frame is refused (decided from its first
    /// two bytes, before any length is read).
    fn check_header(&self) -> Result<Option<usize>, Verdict> {
        let first = self.header[0];
        if first & 0x70 != 0 {
            return Err(Verdict::Invalid); // reserved bits: no extension was agreed
        }
        match first & 0x0f {
            0x0..=0x2 => return Err(Verdict::DataFrame),
            0x8..=0xa => {}
            _ => return Err(Verdict::Invalid), // reserved opcodes
        }
        if self.have < 2 {
            return Ok(None);
        }
        let second = self.header[1];
        let length = usize::from(second & 0x7f);
        if first & 0x80 == 0 || second & 0x80 == 0 || length > MAX_CONTROL {
            // A fragmented or unmasked control frame, or one longer than 125 bytes (which
            // also covers the 16- and 64-bit length forms).
            return Err(Verdict::Invalid);
        }
        Ok((self.have == HEADER).then_some(length))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8, 1, 2, 3, 4];
        frame.extend(
            payload
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ [1, 2, 3, 4][i % 4]),
        );
        frame
    }

    #[test]
    fn control_frames_pass_whole_even_a_byte_at_a_time() {
        let mut stream = masked(0x9, b"ping");
        stream.extend(masked(0xa, b""));
        stream.extend(masked(0x8, &[0x03, 0xe8]));
        let mut guard = FrameGuard::default();
        let mut out = Vec::new();
        for byte in &stream {
            assert_eq!(
                guard.filter(std::slice::from_ref(byte), &mut out),
                Verdict::Pass
            );
        }
        assert_eq!(out, stream);
    }

    #[test]
    fn a_data_frame_is_refused_at_its_first_byte_whatever_length_it_announces() {
        let mut guard = FrameGuard::default();
        let mut out = Vec::new();
        let ping = masked(0x9, b"x");
        assert_eq!(guard.filter(&ping, &mut out), Verdict::Pass);
        // A binary frame announcing 2^62 bytes: only its first byte is looked at.
        let mut header = vec![0x82, 0xff];
        header.extend((1u64 << 62).to_be_bytes());
        assert_eq!(guard.filter(&header, &mut out), Verdict::DataFrame);
        let mut expected = ping;
        expected.extend(EMPTY_TEXT);
        assert_eq!(out, expected);
        // Whatever follows is not passed on.
        assert_eq!(guard.filter(&[0u8; 64], &mut out), Verdict::Invalid);
        assert_eq!(out, expected);
        for opcode in [0x0, 0x1] {
            let mut out = Vec::new();
            assert_eq!(
                FrameGuard::default().filter(&[opcode, 0x85], &mut out),
                Verdict::DataFrame
            );
        }
    }

    #[test]
    fn oversized_unmasked_fragmented_or_reserved_frames_are_invalid() {
        let cases: [&[u8]; 6] = [
            &[0x89, 0xfe, 0x00, 0x7e],       // a ping with a 16-bit length
            &[0x88, 0xff, 0, 0, 0, 0, 0, 0], // a close with a 64-bit length
            &[0x89, 0x05],                   // unmasked
            &[0x09, 0x80],                   // a fragmented ping
            &[0xc9, 0x80],                   // RSV1
            &[0x83, 0x80],                   // reserved opcode
        ];
        for bytes in cases {
            let mut out = Vec::new();
            assert_eq!(
                FrameGuard::default().filter(bytes, &mut out),
                Verdict::Invalid,
                "{bytes:x?}"
            );
            assert!(out.is_empty());
        }
    }

    #[test]
    fn a_header_is_held_until_whole_and_a_payload_passes_as_it_arrives() {
        let ping = masked(0x9, b"abc");
        let mut guard = FrameGuard::default();
        let mut out = Vec::new();

        assert_eq!(guard.filter(&ping[..5], &mut out), Verdict::Pass);
        assert!(out.is_empty(), "half a header is not passed on");
        assert_eq!(guard.filter(&ping[5..7], &mut out), Verdict::Pass);
        assert_eq!(
            out,
            ping[..7],
            "the header, then the payload byte that came"
        );
        assert_eq!(guard.filter(&ping[7..], &mut out), Verdict::Pass);
        assert_eq!(out, ping);
    }

    #[test]
    fn a_control_frame_of_125_bytes_passes_and_one_of_126_does_not() {
        let largest = masked(0x9, &[b'x'; MAX_CONTROL]);
        let mut out = Vec::new();
        assert_eq!(
            FrameGuard::default().filter(&largest, &mut out),
            Verdict::Pass
        );
        assert_eq!(out, largest);

        let mut out = Vec::new();
        assert_eq!(
            FrameGuard::default().filter(&[0x89, 0x80 | 126], &mut out),
            Verdict::Invalid
        );
        assert!(out.is_empty());
    }

    #[test]
    fn a_data_frame_behind_a_control_frame_in_one_read_keeps_the_control_frame() {
        let close = masked(0x8, &[0x03, 0xe8]);
        let mut bytes = close.clone();
        bytes.extend(masked(0x2, b"payload"));
        let mut guard = FrameGuard::default();
        let mut out = Vec::new();

        assert_eq!(guard.filter(&bytes, &mut out), Verdict::DataFrame);

        let mut expected = close;
        expected.extend(EMPTY_TEXT);
        assert_eq!(out, expected);
    }

    #[test]
    fn once_stopped_the_guard_passes_nothing_even_a_valid_frame() {
        let mut guard = FrameGuard::default();
        let mut out = Vec::new();
        assert_eq!(guard.filter(&[0x89, 0x01], &mut out), Verdict::Invalid);

        assert_eq!(
            guard.filter(&masked(0x9, b"ok"), &mut out),
            Verdict::Invalid
        );
        assert!(out.is_empty());
    }
}
