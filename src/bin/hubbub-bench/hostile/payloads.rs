//! The pictures the image attacks upload, built before any attack.

use std::io::Cursor;

use image::{GrayImage, ImageFormat, RgbImage};

/// The pictures uploaded, built before any attack: image bombs (81 MP, 60 MP) and a lie.
pub(super) struct Payloads {
    pub(super) bombs: Vec<Vec<u8>>,
    pub(super) liar: Vec<u8>,
}

impl Payloads {
    pub(super) fn build() -> Payloads {
        Payloads {
            bombs: [png_bomb(), webp_claiming(10_000, 6000)]
                .into_iter()
                .flatten()
                .collect(),
            liar: truncated_jpeg_claiming_9999_square(),
        }
    }
}

/// A real 9000 × 9000 single-colour PNG: a few hundred KiB, 81 megapixels once decoded.
fn png_bomb() -> Option<Vec<u8>> {
    // From a filled buffer: filling it pixel by pixel is slow unoptimized (`--smoke`).
    let img = GrayImage::from_raw(9000, 9000, vec![200u8; 9000 * 9000])?;
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).ok()?;
    Some(out.into_inner())
}

/// A tiny lossless WebP whose header declares `w` × `h`: a 16 × 16 picture with its VP8L
/// header rewritten (encoding a real 60 MP WebP takes seconds unoptimized). The pixel cap
/// must refuse it by that header; a decoder that believed it would allocate w × h × 4 bytes.
fn webp_claiming(w: u32, h: u32) -> Option<Vec<u8>> {
    let img = GrayImage::from_raw(16, 16, vec![200u8; 256])?;
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::WebP).ok()?;
    let mut bytes = out.into_inner();
    // "VP8L", chunk size (4), signature 0x2f, then 32 bits (little-endian): width − 1 (14),
    // height − 1 (14), alpha (1), version (3).
    let at = bytes.windows(4).position(|c| c == b"VP8L")? + 9;
    let old = u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
    let dims = (w - 1) | (h - 1) << 14 | old & 0xf000_0000;
    bytes[at..at + 4].copy_from_slice(&dims.to_le_bytes());
    // An extended file also states the canvas (24 bits each, minus one) in its VP8X chunk.
    if let Some(x) = bytes.windows(4).position(|c| c == b"VP8X") {
        bytes[x + 12..x + 15].copy_from_slice(&(w - 1).to_le_bytes()[..3]);
        bytes[x + 15..x + 18].copy_from_slice(&(h - 1).to_le_bytes()[..3]);
    }
    Some(bytes)
}

/// A 64 × 64 JPEG whose frame header is patched to 9999 × 9999, cut off 40 bytes into its
/// scan: what once decoded into a 300 MB grey picture from a few hundred bytes.
fn truncated_jpeg_claiming_9999_square() -> Vec<u8> {
    let img = RgbImage::from_fn(64, 64, |x, y| {
        image::Rgb([(x * 7) as u8, (y * 3) as u8, ((x ^ y) % 256) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    if img.write_to(&mut out, ImageFormat::Jpeg).is_err() {
        return Vec::new();
    }
    let mut bytes = out.into_inner();
    let find = |bytes: &[u8], marker: [u8; 2]| bytes.windows(2).position(|w| w == marker);
    // FFC0, length (2), precision (1), height (2), width (2).
    if let Some(sof) = find(&bytes, [0xFF, 0xC0]) {
        bytes[sof + 5..sof + 7].copy_from_slice(&9999u16.to_be_bytes());
        bytes[sof + 7..sof + 9].copy_from_slice(&9999u16.to_be_bytes());
    }
    if let Some(sos) = find(&bytes, [0xFF, 0xDA]) {
        bytes.truncate(sos + 40);
    }
    bytes
}
