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

use crate::domain::{Id, Time};
use crate::error::{Error, Result};
use crate::store::{self, attachments::AttachmentRow, Db};

/// Longest side of a thumbnail, in pixels.
pub const THUMB_SIDE: u32 = 320;
/// The largest width or height decoded.
pub const MAX_SIDE: u32 = 10_000;
/// The most memory one decode may take.
const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

/// An attachment as clients see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
        415,
        "unsupported_media_type",
        "only JPEG, PNG, WebP and GIF images can be uploaded",
    )
}

fn invalid(why: impl std::fmt::Display) -> Error {
    Error::new(
        422,
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
    let result = match format {
        ImageFormat::Jpeg => {
            DynamicImage::ImageRgb8(img.to_rgb8()).write_to(&mut out, ImageFormat::Jpeg)
        }
        ImageFormat::WebP => {
            let rgba = img.to_rgba8();
            image::codecs::webp::WebPEncoder::new_lossless(&mut out).encode(
                rgba.as_raw(),
                rgba.width(),
                rgba.height(),
                image::ExtendedColorType::Rgba8,
            )
        }
        other => img.write_to(&mut out, other),
    };
    result.map_err(Error::internal)?;
    Ok(out.into_inner())
}

/// Sniffs, decodes (bounded), orients, strips and thumbnails. CPU-bound: run it blocking.
fn process(bytes: Vec<u8>) -> Result<Processed> {
    let format = image::guess_format(&bytes).map_err(|_| unsupported())?;
    let content_type = match format {
        ImageFormat::Jpeg => "image/jpeg",
        ImageFormat::Png => "image/png",
        ImageFormat::WebP => "image/webp",
        ImageFormat::Gif => "image/gif",
        _ => return Err(unsupported()),
    };
    let mut reader = ImageReader::with_format(Cursor::new(&bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(invalid)?;
    let orientation = decoder.orientation().map_err(invalid)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(invalid)?;
    img.apply_orientation(orientation);
    let stored = match format {
        ImageFormat::Gif => bytes,
        other => encode(&img, other)?,
    };
    // Small pictures are their own thumbnail (never enlarged).
    let small = if img.width() > THUMB_SIDE || img.height() > THUMB_SIDE {
        img.thumbnail(THUMB_SIDE, THUMB_SIDE)
    } else {
        img.clone()
    };
    let (thumb_format, thumb_type) = if small.color().has_alpha() {
        (ImageFormat::Png, "image/png")
    } else {
        (ImageFormat::Jpeg, "image/jpeg")
    };
    Ok(Processed {
        thumb: encode(&small, thumb_format)?,
        thumb_type,
        width: img.width(),
        height: img.height(),
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

/// Stores an upload of `owner`: files first, then the row. A failure at any step leaves
/// neither (files written so far are removed).
pub async fn upload(db: &Db, data_dir: &Path, owner: Id, bytes: Vec<u8>) -> Result<Attachment> {
    let data_dir = data_dir.to_path_buf();
    let id = Id::new();
    let (processed, data_dir) =
        tokio::task::spawn_blocking(move || -> Result<(Processed, PathBuf)> {
            let processed = process(bytes)?;
            std::fs::create_dir_all(dir(&data_dir)).map_err(Error::internal)?;
            let written = write_atomically(&path_of(&data_dir, id, false), &processed.bytes)
                .and_then(|_| write_atomically(&path_of(&data_dir, id, true), &processed.thumb));
            if let Err(e) = written {
                remove_files(&data_dir, id);
                return Err(Error::internal(e));
            }
            Ok((processed, data_dir))
        })
        .await
        .map_err(Error::internal)??;
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
