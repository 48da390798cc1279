//! Photos: private uploads, sniffed, decoded within limits, re-encoded without metadata,
//! thumbnailed once, stored by id under `<data dir>/attachments/`.
//!
//! Only images are accepted (JPEG, PNG, WebP, GIF), whatever the client says the file is: the
//! bytes decide. JPEG, PNG and WebP are re-encoded from the decoded pixels after applying the
//! EXIF orientation, so no EXIF, GPS or other metadata survives; a GIF is kept as sent (it
//! carries no EXIF). Decoding is bounded (dimensions and memory) against decompression bombs.
//! A photo is as private as the message that carries it: the uploader, and members of the
//! room of that message, may fetch it; an avatar, anyone signed in.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use serde::Serialize;

use crate::core::work::{Admission, Pool};
use crate::domain::{Id, Time};
use crate::error::{Class, Error, Result};
use crate::store::{self, attachments::AttachmentRow, Db};

/// Longest side of a thumbnail, in pixels.
pub const THUMB_SIDE: u32 = 320;
/// The largest width or height decoded (the pixel count has its own setting).
pub const MAX_SIDE: u32 = 10_000;

/// An attachment as clients see it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Attachment {
    pub id: Id,
    pub content_type: String,
    pub size: i64,
    pub width: i32,
    pub height: i32,
}

impl From<&AttachmentRow> for Attachment {
    fn from(row: &AttachmentRow) -> Attachment {
        Attachment {
            id: row.id,
            content_type: row.content_type.clone(),
            size: row.size,
            width: row.width,
            height: row.height,
        }
    }
}

/// Where attachments live.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("attachments")
}

fn path_of(data_dir: &Path, id: Id, thumb: bool) -> PathBuf {
    let name = if thumb {
        format!("{id}.thumb")
    } else {
        id.to_string()
    };
    dir(data_dir).join(name)
}

fn unsupported() -> Error {
    Error::new(
        Class::UnsupportedMediaType,
        "unsupported_media_type",
        "only JPEG, PNG, WebP and GIF images can be uploaded",
    )
}

fn invalid(why: impl std::fmt::Display) -> Error {
    Error::new(
        Class::Invalid,
        "invalid_image",
        format!("the image can't be read: {why}"),
    )
}

/// The processed image: what to store, its thumbnail, and its metadata.
struct Processed {
    bytes: Vec<u8>,
    content_type: &'static str,
    thumb: Vec<u8>,
    thumb_type: &'static str,
    width: u32,
    height: u32,
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Result<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    // Each encoder takes some pixel layouts as they are; only the others are converted (a copy
    // of the whole image, which would double the decode's memory for the common cases).
    let direct = match format {
        ImageFormat::Jpeg => matches!(
            img,
            DynamicImage::ImageRgb8(_) | DynamicImage::ImageLuma8(_)
        ),
        ImageFormat::WebP => matches!(
            img,
            DynamicImage::ImageRgb8(_)
                | DynamicImage::ImageRgba8(_)
                | DynamicImage::ImageLuma8(_)
                | DynamicImage::ImageLumaA8(_)
        ),
        _ => true,
    };
    let result = if direct {
        img.write_to(&mut out, format)
    } else if format == ImageFormat::Jpeg {
        DynamicImage::ImageRgb8(img.to_rgb8()).write_to(&mut out, format)
    } else {
        DynamicImage::ImageRgba8(img.to_rgba8()).write_to(&mut out, format)
    };
    result.map_err(Error::internal)?;
    Ok(out.into_inner())
}

fn too_large(width: u32, height: u32, max_pixels: u64) -> Error {
    Error::new(
        Class::Invalid,
        "image_too_large",
        format!(
            "the image is {width}×{height}; at most {MAX_SIDE} px on a side and {max_pixels} pixels \
             in all are accepted"
        ),
    )
}

/// Whether a JPEG runs from its start marker through every segment and scan to its end marker.
/// A truncated file would otherwise decode "successfully" into a picture padded with grey, as
/// large as its header claims.
fn jpeg_is_whole(b: &[u8]) -> bool {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let mut i = 2;
    while i + 1 < b.len() {
        if b[i] != 0xFF {
            return false;
        }
        let marker = b[i + 1];
        if marker == 0xFF {
            i += 1; // a fill byte before the marker
            continue;
        }
        i += 2;
        match marker {
            0xD9 => return true,
            0x01 | 0xD0..=0xD7 => continue, // markers without a length
            _ => {}
        }
        let Some(len) = b
            .get(i..i + 2)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        else {
            return false;
        };
        if len < 2 {
            return false;
        }
        i += len;
        if marker == 0xDA {
            // Entropy-coded data runs to the next marker that isn't a stuffed 0xFF00 or a reset.
            loop {
                match (b.get(i), b.get(i + 1)) {
                    (Some(0xFF), Some(0x00 | 0xD0..=0xD7)) => i += 2,
                    (Some(0xFF), Some(0xFF)) => i += 1,
                    (Some(0xFF), Some(_)) => break,
                    (Some(_), _) => i += 1,
                    (None, _) => return false,
                }
            }
        }
    }
    false
}

/// Sniffs, checks the declared size, decodes (bounded), orients, strips and thumbnails.
/// CPU-bound: run it in the image pool. `max_pixels` bounds what one decode may allocate for
/// its pixels (4 bytes each), before any of them is decoded.
fn process(bytes: Vec<u8>, max_pixels: u64) -> Result<Processed> {
    let format = image::guess_format(&bytes).map_err(|_| unsupported())?;
    let content_type = match format {
        ImageFormat::Jpeg => "image/jpeg",
        ImageFormat::Png => "image/png",
        ImageFormat::WebP => "image/webp",
        ImageFormat::Gif => "image/gif",
        _ => return Err(unsupported()),
    };
    if format == ImageFormat::Jpeg && !jpeg_is_whole(&bytes) {
        return Err(invalid("the JPEG is truncated or corrupt"));
    }
    let mut reader = ImageReader::with_format(Cursor::new(&bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(max_pixels.saturating_mul(4));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| match e {
        image::ImageError::Limits(_) => Error::new(
            Class::Invalid,
            "image_too_large",
            format!("the image is larger than {MAX_SIDE} px on a side"),
        ),
        other => invalid(other),
    })?;
    // The header's dimensions decide before a single pixel is decoded.
    let (width, height) = decoder.dimensions();
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > max_pixels {
        return Err(too_large(width, height, max_pixels));
    }
    let orientation = decoder.orientation().map_err(invalid)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(_) => too_large(width, height, max_pixels),
        other => invalid(other),
    })?;
    img.apply_orientation(orientation);
    let stored = match format {
        ImageFormat::Gif => bytes,
        other => {
            drop(bytes);
            encode(&img, other)?
        }
    };
    // Small pictures are their own thumbnail (never enlarged).
    let small = if img.width() > THUMB_SIDE || img.height() > THUMB_SIDE {
        img.thumbnail(THUMB_SIDE, THUMB_SIDE)
    } else {
        img.clone()
    };
    let (width, height) = (img.width(), img.height());
    drop(img);
    let (thumb_format, thumb_type) = if small.color().has_alpha() {
        (ImageFormat::Png, "image/png")
    } else {
        (ImageFormat::Jpeg, "image/jpeg")
    };
    Ok(Processed {
        thumb: encode(&small, thumb_format)?,
        thumb_type,
        width,
        height,
        bytes: stored,
        content_type,
    })
}

/// Writes a file whole or not at all (a temp file renamed into place).
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, bytes)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// What an upload needs besides its bytes.
pub struct Upload<'a> {
    pub db: &'a Db,
    pub data_dir: &'a Path,
    /// The image pool, and the place in its queue the caller took before reading the body.
    pub pool: &'a Pool,
    pub admission: Admission,
    pub max_pixels: u64,
}

/// Stores an upload of `owner`: files first, then the row. A failure at any step leaves
/// neither (files written so far are removed).
pub async fn upload(to: Upload<'_>, owner: Id, bytes: Vec<u8>) -> Result<Attachment> {
    let Upload {
        db,
        data_dir,
        pool,
        admission,
        max_pixels,
    } = to;
    let data_dir = data_dir.to_path_buf();
    let id = Id::new();
    let (processed, data_dir) = pool
        .run(admission, move || -> Result<(Processed, PathBuf)> {
            let processed = process(bytes, max_pixels)?;
            std::fs::create_dir_all(dir(&data_dir)).map_err(Error::internal)?;
            let written = write_atomically(&path_of(&data_dir, id, false), &processed.bytes)
                .and_then(|_| write_atomically(&path_of(&data_dir, id, true), &processed.thumb));
            if let Err(e) = written {
                remove_files(&data_dir, id);
                return Err(Error::internal(e));
            }
            Ok((processed, data_dir))
        })
        .await?;
    let row = AttachmentRow {
        id,
        owner_id: owner,
        content_type: processed.content_type.to_string(),
        size: processed.bytes.len() as i64,
        width: processed.width as i32,
        height: processed.height as i32,
        thumb_content_type: processed.thumb_type.to_string(),
        message_id: None,
        position: 0,
        created_at: Time::now(),
    };
    let view = Attachment::from(&row);
    let inserted = db
        .run(move |conn| {
            Ok(store::write_tx(conn, |conn| {
                store::attachments::insert(conn, &row)
            })?)
        })
        .await;
    if let Err(e) = inserted {
        remove_files(&data_dir, id);
        return Err(e);
    }
    Ok(view)
}

/// Removes an attachment's files.
pub fn remove_files(data_dir: &Path, id: Id) {
    let _ = std::fs::remove_file(path_of(data_dir, id, false));
    let _ = std::fs::remove_file(path_of(data_dir, id, true));
}

/// The bytes of an attachment (or its thumbnail) and their type, if `user` may see it;
/// 404 `attachment_not_found` otherwise (it doesn't say whether it exists).
pub async fn read(
    db: &Db,
    data_dir: &Path,
    user: Id,
    id: Id,
    thumb: bool,
) -> Result<(Vec<u8>, String)> {
    let row = db
        .run(move |conn| {
            let Some(row) = store::attachments::find(conn, id)? else {
                return Ok(None);
            };
            let allowed = row.owner_id == user
                || store::attachments::visible_through_room(conn, id, user)?
                || store::users::is_avatar(conn, id)?;
            Ok(allowed.then_some(row))
        })
        .await?
        .ok_or_else(|| Error::not_found("attachment_not_found", "no such attachment"))?;
    let path = path_of(data_dir, id, thumb);
    let bytes = tokio::task::spawn_blocking(move || std::fs::read(path))
        .await
        .map_err(Error::internal)?
        .map_err(Error::internal)?;
    let content_type = if thumb {
        row.thumb_content_type
    } else {
        row.content_type
    };
    Ok((bytes, content_type))
}

/// Deletes the rows of unattached uploads older than `cutoff` (avatars excepted) and returns
/// their ids: remove their files with [`remove_files`] once the transaction has committed.
pub fn prune_rows(conn: &mut store::DbConnection, cutoff: Time) -> Result<Vec<Id>> {
    let mut removed = Vec::new();
    for id in store::attachments::stale(conn, cutoff)? {
        if !store::users::is_avatar(conn, id)? && store::attachments::delete(conn, id)? {
            removed.push(id);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_whole_jpeg_is_whole_and_any_cut_of_it_is_not() {
        let whole = jpeg(40, 30);
        assert!(jpeg_is_whole(&whole));
        for cut in [2, 20, whole.len() / 2, whole.len() - 2, whole.len() - 1] {
            assert!(!jpeg_is_whole(&whole[..cut]), "cut at {cut}");
        }
        assert!(!jpeg_is_whole(b"not a jpeg"));
    }

    #[test]
    fn stuffed_bytes_resets_and_fill_bytes_are_not_the_end() {
        // SOI, SOS (length 2), data with a stuffed FF00, a reset marker, fill bytes, EOI.
        let scan = [
            0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56, 0xFF,
            0xFF, 0xD9,
        ];
        assert!(jpeg_is_whole(&scan));
        assert!(!jpeg_is_whole(&scan[..scan.len() - 1]));
        assert!(!jpeg_is_whole(&scan[..9]), "FF00 is data, not a marker");
    }

    #[test]
    fn the_header_decides_before_any_pixel_is_decoded() {
        let bytes = jpeg(300, 200);
        let err = process(bytes.clone(), 300 * 200 - 1)
            .err()
            .expect("refused");
        assert_eq!((err.class, err.code), (Class::Invalid, "image_too_large"));
        let ok = process(bytes, 300 * 200).expect("accepted at the cap");
        assert_eq!((ok.width, ok.height), (300, 200));
    }
}
