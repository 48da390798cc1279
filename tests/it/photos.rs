//! Photos: uploads sniffed and re-encoded without metadata, thumbnails, and access as private
//! as the message that carries them.

use std::io::Cursor;

use awc::http::header;
use image::{ImageFormat, RgbImage, RgbaImage};
use serde_json::{json, Value};

use crate::harness::{send_raw, Resp, TestApp, TestUser};

pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A JPEG carrying an EXIF block: orientation 6 ("rotate 90° clockwise") and a GPS IFD.
fn jpeg_with_exif(w: u32, h: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, _| image::Rgb([(x * 5 % 256) as u8, 40, 200]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Jpeg).unwrap();
    let jpeg = out.into_inner();
    let mut tiff: Vec<u8> = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
    tiff.extend([2, 0]); // IFD0: two entries
    tiff.extend([0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]); // Orientation = 6
    tiff.extend([0x25, 0x88, 4, 0, 1, 0, 0, 0, 38, 0, 0, 0]); // GPSInfo IFD at 38
    tiff.extend([0, 0, 0, 0]);
    tiff.extend([1, 0]); // GPS IFD: one entry
    tiff.extend([0x01, 0x00, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0]); // GPSLatitudeRef = "N"
    tiff.extend([0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let len = (app1.len() + 2) as u16;
    let mut with_exif = jpeg[..2].to_vec();
    with_exif.extend([0xFF, 0xE1]);
    with_exif.extend(len.to_be_bytes());
    with_exif.extend(app1);
    with_exif.extend(&jpeg[2..]);
    with_exif
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A valid little PNG whose header claims 100,000 × 100,000 pixels (a decompression bomb).
fn png_bomb() -> Vec<u8> {
    let mut bytes = png(4, 4);
    // IHDR data starts at 16: width, height (big endian); its CRC covers type + data (12..29).
    bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

pub async fn upload(
    app: &TestApp,
    user: &TestUser,
    bytes: &[u8],
    name: &str,
    claimed: &str,
) -> Resp {
    let boundary = "hubbub-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {claimed}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    let req = user.req(app.post("/api/v1/attachments")).insert_header((
        header::CONTENT_TYPE,
        format!("multipart/form-data; boundary={boundary}"),
    ));
    send_raw(req, body).await
}

/// Status, headers and raw bytes of a download.
async fn download(app: &TestApp, user: &TestUser, path: &str) -> (u16, header::HeaderMap, Vec<u8>) {
    let mut res = user.req(app.get(path)).send().await.expect("request");
    let bytes = res.body().limit(32 << 20).await.expect("body").to_vec();
    (res.status().as_u16(), res.headers().clone(), bytes)
}

fn dims(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(bytes).expect("a decodable image");
    (img.width(), img.height())
}

#[actix_web::test]
async fn a_png_uploads_with_metadata_and_a_thumbnail() {
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;

    let up = upload(&app, &alice, &png(640, 400), "pic.png", "image/png")
        .await
        .expect(201);

    assert_eq!(up["content_type"], "image/png");
    assert_eq!(
        (up["width"].as_u64(), up["height"].as_u64()),
        (Some(640), Some(400))
    );
    let id = up["id"].as_str().unwrap();
    let (status, headers, bytes) =
        download(&app, &alice, &format!("/api/v1/attachments/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("content-type").unwrap(), "image/png");
    assert_eq!(bytes.len() as u64, up["size"].as_u64().unwrap());
    assert_eq!(dims(&bytes), (640, 400));
    let (status, headers, thumb) =
        download(&app, &alice, &format!("/api/v1/attachments/{id}/thumbnail")).await;
    assert_eq!(status, 200);
    assert!(headers
        .get("cache-control")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("private"));
    assert_eq!(dims(&thumb), (320, 200));
}

#[actix_web::test]
async fn jpeg_exif_is_applied_then_stripped() {
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let original = jpeg_with_exif(40, 20);
    assert!(original.windows(6).any(|w| w == b"Exif\0\0"));

    let up = upload(&app, &alice, &original, "gps.jpg", "image/jpeg")
        .await
        .expect(201);

    // Orientation 6 turns a 40×20 picture into a 20×40 one.
    assert_eq!(
        (up["width"].as_u64(), up["height"].as_u64()),
        (Some(20), Some(40))
    );
    let id = up["id"].as_str().unwrap();
    let (status, headers, bytes) =
        download(&app, &alice, &format!("/api/v1/attachments/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("content-type").unwrap(), "image/jpeg");
    assert!(
        !bytes.windows(4).any(|w| w == b"Exif"),
        "EXIF survived the upload"
    );
    assert_eq!(dims(&bytes), (20, 40));
}

#[actix_web::test]
async fn only_the_uploader_and_members_of_the_carrying_room_see_a_photo() {
    let app = TestApp::spawn().await;
    let (alice, bob, eve) = (
        app.register("alice").await,
        app.register("bob").await,
        app.register("eve").await,
    );
    let room = alice.create_room(&app, "pics", &[&bob]).await;
    let room_id = room["id"].as_str().unwrap();
    let mut bob_socket = bob.socket(&app, room["event_id"].as_str()).await;
    let up = upload(&app, &alice, &png(50, 50), "a.png", "image/png")
        .await
        .expect(201);
    let id = up["id"].as_str().unwrap();
    let path = format!("/api/v1/attachments/{id}");
    assert_eq!(
        download(&app, &bob, &path).await.0,
        404,
        "not attached yet: only the uploader"
    );

    let sent = alice
        .post(
            &app,
            &format!("/api/v1/rooms/{room_id}/messages"),
            &json!({"attachment_ids": [id]}),
        )
        .await
        .expect(201);

    assert_eq!(sent["message"]["attachments"][0]["id"], id);
    assert_eq!(sent["message"]["body"], "");
    let frame = bob_socket.next_event().await;
    assert_eq!(frame["data"]["attachments"][0]["width"], 50);
    assert_eq!(download(&app, &bob, &path).await.0, 200);
    assert_eq!(
        download(&app, &bob, &format!("{path}/thumbnail")).await.0,
        200
    );
    let denied = eve.get(&app, &path).await;
    denied.expect_error(404, "attachment_not_found");
    assert_eq!(
        download(&app, &eve, &format!("{path}/thumbnail")).await.0,
        404
    );
}

#[actix_web::test]
async fn an_upload_attaches_once_and_only_by_its_owner() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let room = alice.create_room(&app, "pics", &[&bob]).await;
    let messages = format!("/api/v1/rooms/{}/messages", room["id"].as_str().unwrap());
    let id = upload(&app, &alice, &png(8, 8), "a.png", "image/png")
        .await
        .expect(201)["id"]
        .clone();

    bob.post(
        &app,
        &messages,
        &json!({"body": "mine now", "attachment_ids": [id]}),
    )
    .await
    .expect_error(422, "validation_failed");
    alice
        .post(
            &app,
            &messages,
            &json!({"body": "first", "attachment_ids": [id]}),
        )
        .await
        .expect(201);
    alice
        .post(
            &app,
            &messages,
            &json!({"body": "again", "attachment_ids": [id]}),
        )
        .await
        .expect_error(422, "validation_failed");

    let history = alice.history(&app, room["id"].as_str().unwrap(), "").await;
    let bodies: Vec<&Value> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["body"])
        .collect();
    assert_eq!(bodies, vec![&json!("first")]);
}

#[actix_web::test]
async fn sends_racing_for_one_upload_attach_it_to_exactly_one_message() {
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "pics", &[]).await;
    let messages = format!("/api/v1/rooms/{}/messages", room["id"].as_str().unwrap());
    let id = upload(&app, &alice, &png(8, 8), "a.png", "image/png")
        .await
        .expect(201)["id"]
        .clone();

    // Sends that arrive together are checked as one group: only one may take the upload.
    let racers = (0..8).map(|i| {
        let body = json!({"body": format!("take {i}"), "attachment_ids": [id]});
        let (alice, app, messages) = (&alice, &app, &messages);
        async move { alice.post(app, messages, &body).await }
    });
    let answers = futures_util::future::join_all(racers).await;

    let mut won = Vec::new();
    for resp in answers {
        if resp.status == 201 {
            won.push(resp.expect(201));
        } else {
            resp.expect_error(422, "validation_failed");
        }
    }
    assert_eq!(won.len(), 1, "exactly one send carries the upload");
    assert_eq!(won[0]["message"]["attachments"][0]["id"], id);
    let history = alice.history(&app, room["id"].as_str().unwrap(), "").await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);
    assert_eq!(history["messages"][0]["attachments"][0]["id"], id);
}

#[actix_web::test]
async fn bad_uploads_are_clear_4xx_and_leave_nothing() {
    let app = TestApp::builder()
        .env("HUBBUB_MAX_UPLOAD_BYTES", "100000")
        .spawn()
        .await;
    let alice = app.register("alice").await;

    upload(
        &app,
        &alice,
        b"just some text, not a picture",
        "cat.png",
        "image/png",
    )
    .await
    .expect_error(415, "unsupported_media_type");
    let jpeg = jpeg_with_exif(64, 64);
    upload(
        &app,
        &alice,
        &jpeg[..jpeg.len() / 2],
        "cut.jpg",
        "image/jpeg",
    )
    .await
    .expect_error(422, "invalid_image");
    upload(&app, &alice, &png_bomb(), "bomb.png", "image/png")
        .await
        .expect_error(422, "image_too_large");
    upload(&app, &alice, &vec![0u8; 150_000], "big.png", "image/png")
        .await
        .expect_error(413, "payload_too_large");

    // The server is still well after all of those.
    upload(&app, &alice, &png(10, 10), "ok.png", "image/png")
        .await
        .expect(201);
}

#[actix_web::test]
async fn downloads_carry_an_etag_and_answer_304() {
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let id = upload(&app, &alice, &png(10, 10), "a.png", "image/png")
        .await
        .expect(201)["id"]
        .clone();
    let path = format!("/api/v1/attachments/{}", id.as_str().unwrap());
    let (_, headers, _) = download(&app, &alice, &path).await;
    let etag = headers
        .get("etag")
        .expect("an ETag")
        .to_str()
        .unwrap()
        .to_owned();

    let res = alice
        .req(app.get(&path))
        .insert_header(("If-None-Match", etag.as_str()))
        .send()
        .await
        .unwrap();

    assert_eq!(res.status().as_u16(), 304);
}

#[actix_web::test]
async fn an_avatar_is_visible_to_anyone_signed_in() {
    let app = TestApp::spawn().await;
    let (alice, stranger) = (app.register("alice").await, app.register("stranger").await);
    let id = upload(&app, &alice, &png(64, 64), "me.png", "image/png")
        .await
        .expect(201)["id"]
        .clone();
    let other = upload(&app, &stranger, &png(8, 8), "x.png", "image/png")
        .await
        .expect(201)["id"]
        .clone();

    let me = alice
        .patch(&app, "/api/v1/me", &json!({"avatar_attachment_id": id}))
        .await
        .expect(200);
    alice
        .patch(&app, "/api/v1/me", &json!({"avatar_attachment_id": other}))
        .await
        .expect_error(422, "validation_failed");

    assert_eq!(me["avatar_attachment_id"], id);
    let path = format!("/api/v1/attachments/{}", id.as_str().unwrap());
    assert_eq!(download(&app, &stranger, &path).await.0, 200);
}

/// Keeps the RGBA import used: a transparent image gets a PNG thumbnail.
#[actix_web::test]
async fn a_transparent_image_gets_a_png_thumbnail() {
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let img = RgbaImage::from_fn(400, 400, |x, _| image::Rgba([200, 10, 10, (x % 256) as u8]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).unwrap();
    let id = upload(&app, &alice, &out.into_inner(), "t.png", "image/png")
        .await
        .expect(201)["id"]
        .clone();

    let (status, headers, thumb) = download(
        &app,
        &alice,
        &format!("/api/v1/attachments/{}/thumbnail", id.as_str().unwrap()),
    )
    .await;

    assert_eq!(status, 200);
    assert_eq!(headers.get("content-type").unwrap(), "image/png");
    assert_eq!(dims(&thumb), (320, 320));
}

#[actix_web::test]
async fn unattached_uploads_expire() {
    let app = TestApp::builder()
        .env("HUBBUB_ATTACHMENT_TTL_SECS", "1")
        .env("HUBBUB_PRUNE_INTERVAL_SECS", "1")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "pics", &[]).await;
    let messages = format!("/api/v1/rooms/{}/messages", room["id"].as_str().unwrap());
    let loose = upload(&app, &alice, &png(8, 8), "a.png", "image/png")
        .await
        .expect(201);
    let kept = upload(&app, &alice, &png(8, 8), "b.png", "image/png")
        .await
        .expect(201);
    alice
        .post(&app, &messages, &json!({"attachment_ids": [kept["id"]]}))
        .await
        .expect(201);

    actix_web::rt::time::sleep(std::time::Duration::from_millis(2600)).await;

    let path = |v: &Value| format!("/api/v1/attachments/{}", v["id"].as_str().unwrap());
    assert_eq!(
        download(&app, &alice, &path(&loose)).await.0,
        404,
        "an unattached upload expires"
    );
    assert_eq!(
        download(&app, &alice, &path(&kept)).await.0,
        200,
        "an attached one stays"
    );
}

#[actix_web::test]
async fn attachments_keep_their_order_and_go_with_a_deleted_message() {
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "pics", &[]).await;
    let messages = format!("/api/v1/rooms/{}/messages", room["id"].as_str().unwrap());
    let first = upload(&app, &alice, &png(30, 30), "1.png", "image/png")
        .await
        .expect(201)["id"]
        .clone();
    let second = upload(&app, &alice, &png(20, 20), "2.png", "image/png")
        .await
        .expect(201)["id"]
        .clone();

    let sent = alice
        .post(
            &app,
            &messages,
            &json!({"body": "two", "attachment_ids": [second, first]}),
        )
        .await
        .expect(201);

    let history = alice.history(&app, room["id"].as_str().unwrap(), "").await;
    let order: Vec<&Value> = history["messages"][0]["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["id"])
        .collect();
    assert_eq!(
        order,
        vec![&second, &first],
        "in the order the sender listed them"
    );
    let small = format!("/api/v1/attachments/{}/thumbnail", second.as_str().unwrap());
    let (_, _, thumb) = download(&app, &alice, &small).await;
    assert_eq!(dims(&thumb), (20, 20), "a small picture is not enlarged");

    let message = format!("{messages}/{}", sent["message"]["id"].as_str().unwrap());
    alice.delete(&app, &message).await.expect(204);

    let path = format!("/api/v1/attachments/{}", first.as_str().unwrap());
    assert_eq!(
        download(&app, &alice, &path).await.0,
        404,
        "a deleted message's photos go too"
    );
}

#[actix_web::test]
async fn a_gif_kept_as_sent_downloads_when_opened_as_a_page_and_runs_nothing() {
    // Arrange: GIFs are stored byte for byte, so a script appended to one comes back.
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let mut gif = Vec::new();
    RgbImage::from_pixel(8, 8, image::Rgb([200, 10, 10]))
        .write_to(&mut Cursor::new(&mut gif), ImageFormat::Gif)
        .unwrap();
    gif.extend_from_slice(b"<script>alert(document.cookie)</script>");
    let png_id = upload(&app, &alice, &png(8, 8), "p.png", "image/png")
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Act
    let up = upload(&app, &alice, &gif, "g.gif", "image/gif")
        .await
        .expect(201);
    let id = up["id"].as_str().unwrap();
    let (status, headers, _) = download(&app, &alice, &format!("/api/v1/attachments/{id}")).await;
    let (_, png_headers, _) =
        download(&app, &alice, &format!("/api/v1/attachments/{png_id}")).await;

    // Assert
    assert_eq!(status, 200);
    let get = |h: &header::HeaderMap, name| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(get(&headers, header::CONTENT_TYPE), "image/gif");
    assert_eq!(get(&headers, header::CONTENT_DISPOSITION), "attachment");
    assert_eq!(get(&headers, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    for h in [&headers, &png_headers] {
        let csp = get(h, header::CONTENT_SECURITY_POLICY);
        assert!(
            csp.contains("sandbox") && csp.contains("default-src 'none'"),
            "{csp}"
        );
    }
    assert_eq!(
        get(&png_headers, header::CONTENT_DISPOSITION),
        "",
        "re-encoded images show inline"
    );
}
