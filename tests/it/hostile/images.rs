//! Image bombs: pictures whose header claims far more pixels than their bytes carry, truncated
//! JPEGs that decoded "successfully" into huge grey pictures, and many decodes at once.

use std::io::Cursor;
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::future::{join, join_all};
use image::{ImageFormat, RgbImage};

use super::{Honest, MIB};
use crate::harness::{Resp, TestApp, TestUser};
use crate::photos::{png, upload};

/// A real 9000 × 9000 single-colour picture: a few KiB, 81 megapixels once decoded.
fn bomb(format: ImageFormat) -> Vec<u8> {
    static PNG: OnceLock<Vec<u8>> = OnceLock::new();
    static WEBP: OnceLock<Vec<u8>> = OnceLock::new();
    let encode = || {
        let img = image::GrayImage::from_pixel(9000, 9000, image::Luma([200]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).expect("encode the bomb");
        out.into_inner()
    };
    match format {
        ImageFormat::Png => PNG.get_or_init(encode),
        _ => WEBP.get_or_init(encode),
    }
    .clone()
}

/// A JPEG of `w` × `h` with some detail (so that it isn't all one scan of nothing).
fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 7 % 256) as u8,
            (y * 3 % 256) as u8,
            ((x ^ y) % 256) as u8,
        ])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Jpeg).expect("encode");
    out.into_inner()
}

/// A small JPEG whose frame header claims 9999 × 9999, cut off a little into its scan: what
/// decoded to a 2.7 MB grey picture from 333 bytes.
fn truncated_jpeg_claiming_9999_square() -> Vec<u8> {
    let mut bytes = jpeg(64, 64);
    let sof = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("a baseline frame header");
    // FFC0, length (2), precision (1), height (2), width (2).
    bytes[sof + 5..sof + 7].copy_from_slice(&9999u16.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&9999u16.to_be_bytes());
    let sos = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xDA])
        .expect("a scan");
    bytes.truncate(sos + 40);
    bytes
}

/// `n` uploads of `bytes` by `user` at once.
async fn uploads(app: &TestApp, user: &TestUser, bytes: &[u8], n: usize) -> Vec<Resp> {
    join_all((0..n).map(|_| upload(app, user, bytes, "attack.img", "image/png"))).await
}

#[actix_web::test]
async fn pictures_claiming_81_megapixels_are_refused_by_their_header() {
    // Arrange
    let app = TestApp::spawn().await;
    let honest = Honest::join(&app).await;
    let mallory = app.register("mallory").await;
    let (png, webp) = (bomb(ImageFormat::Png), bomb(ImageFormat::WebP));
    assert!(png.len() < 512 * 1024 && webp.len() < 512 * 1024);
    app.reset_peak_memory();
    let (before, _) = app.memory();

    // Act: four of each at once, while an honest user sends.
    let attack = async {
        let mut all = uploads(&app, &mallory, &png, 4).await;
        all.extend(uploads(&app, &mallory, &webp, 4).await);
        all
    };
    let (answers, ()) = join(attack, honest.sends(&app, "during the bombs")).await;
    let (_, peak) = app.memory();

    // Assert
    for answer in &answers {
        answer.expect_error(422, "image_too_large");
    }
    assert!(
        peak < before + 32 * MIB,
        "peak RSS {peak} KiB against {before} KiB before: a bomb was decoded"
    );
    assert_eq!(app.stored_attachments(), 0, "nothing was stored");
    honest.history_has(&app, &["during the bombs"]).await;
}

#[actix_web::test]
async fn a_truncated_jpeg_is_invalid_and_nothing_is_stored() {
    // Arrange
    let app = TestApp::spawn().await;
    let honest = Honest::join(&app).await;
    let mallory = app.register("mallory").await;
    let liar = truncated_jpeg_claiming_9999_square();
    let whole = jpeg(800, 600);
    let cut = whole[..whole.len() * 2 / 3].to_vec();
    app.reset_peak_memory();
    let (before, _) = app.memory();

    // Act
    let attack = async {
        let mut all = uploads(&app, &mallory, &liar, 4).await;
        all.push(upload(&app, &mallory, &cut, "cut.jpg", "image/jpeg").await);
        all
    };
    let (answers, ()) = join(attack, honest.sends(&app, "during the lies")).await;
    let (_, peak) = app.memory();

    // Assert
    for answer in &answers {
        answer.expect_error(422, "invalid_image");
    }
    assert_eq!(app.stored_attachments(), 0, "nothing was stored");
    assert!(
        peak < before + 32 * MIB,
        "peak RSS {peak} KiB against {before} KiB before"
    );
    upload(&app, &mallory, &whole, "whole.jpg", "image/jpeg")
        .await
        .expect(201);
    honest.history_has(&app, &["during the lies"]).await;
}

#[actix_web::test]
async fn concurrent_decodes_cost_at_most_the_pool_size_times_one_decode() {
    // Arrange: one worker and one place in the queue; pictures just under a 6 MP cap.
    let app = TestApp::builder()
        .env("HUBBUB_MAX_IMAGE_PIXELS", "6000000")
        .env("HUBBUB_IMAGE_WORKERS", "1")
        .env("HUBBUB_IMAGE_QUEUE", "1")
        .spawn()
        .await;
    let honest = Honest::join(&app).await;
    let mallory = app.register("mallory").await;
    let picture = png(3000, 1990);
    upload(&app, &mallory, &png(3000, 2001), "over.png", "image/png")
        .await
        .expect_error(422, "image_too_large");

    // One decode alone: its peak is the budget (measured, not assumed from a limit).
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.reset_peak_memory();
    let (idle, _) = app.memory();
    upload(&app, &mallory, &picture, "one.png", "image/png")
        .await
        .expect(201);
    let (_, one_peak) = app.memory();
    let one = one_peak.saturating_sub(idle);
    eprintln!(
        "one {}-byte 6 MP PNG decode: +{one} KiB peak",
        picture.len()
    );
    assert!(one > 6 * MIB, "the decode is visible in RSS ({one} KiB)");

    // Act: eight at once, while an honest user sends.
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.reset_peak_memory();
    let (idle, _) = app.memory();
    let (answers, ()) = join(
        uploads(&app, &mallory, &picture, 8),
        honest.sends(&app, "during the decodes"),
    )
    .await;
    let (_, peak) = app.memory();

    // Assert: the pool ran one at a time and refused beyond its queue at once.
    let created = answers.iter().filter(|a| a.status == 201).count();
    let busy: Vec<&Resp> = answers.iter().filter(|a| a.status == 503).collect();
    assert_eq!(created + busy.len(), 8, "only 201 or 503");
    assert!(created >= 1 && !busy.is_empty(), "{created} created");
    for refused in busy {
        refused.expect_error(503, "server_busy");
        assert!(refused.header("retry-after").is_some());
    }
    let eight = peak.saturating_sub(idle);
    eprintln!("eight at once: +{eight} KiB peak, {created} created");
    assert!(
        eight < one + one / 2 + 2 * picture.len() as u64 / 1024 + 8 * MIB,
        "eight concurrent uploads peaked at +{eight} KiB, one alone at +{one} KiB"
    );
    honest.history_has(&app, &["during the decodes"]).await;
}
