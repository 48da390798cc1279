//! The push layer's way out: [`crate::push::transport::Transport`] over awc, with OpenSSL and
//! the system's root certificates.
//!
//! Push endpoints are URLs that clients chose, so the server must not become their way into its
//! own network (server-side request forgery). Unless `HUBBUB_PUSH_ALLOW_INSECURE`, a request
//! goes only to `https` URLs, and only to addresses `core::push::refused_address` accepts. The
//! name is resolved here, for this request, and awc is told to connect to the address that was
//! checked (`ClientRequest::address`), so a name re-pointed at an internal host after it was
//! subscribed (or between two lookups) can't be reached. Redirects are not followed.
//!
//! awc's client is not `Send`: build the transport on the thread that uses it.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use awc::error::{ConnectError, PayloadError, SendRequestError};
use awc::http::header::{self, HttpDate};
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use futures_util::{Stream, StreamExt};
use openssl::ssl::{SslConnector, SslMethod};

use crate::config::PushSettings;
use crate::core::push::refused_address;
use crate::push::transport::{Failure, Outgoing, Reply, Transport};

/// The most of an answer's body that is read.
pub const MAX_BODY: usize = 64 * 1024;
/// The longest `Retry-After` honoured; a far-off one is clipped to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The most addresses of one name tried, in the resolver's order.
const MAX_ADDRESSES: usize = 4;

/// Posts over awc, refusing what `allow_insecure` doesn't allow.
pub struct Outbound {
    client: awc::Client,
    allow_insecure: bool,
    timeout: Duration,
}

/// The transport the push worker sends with: `settings.timeout` for each whole request
/// (resolving, connecting, the answer and its body), `settings.allow_insecure` for the checks.
pub fn transport(settings: &PushSettings) -> anyhow::Result<Outbound> {
    let mut tls = SslConnector::builder(SslMethod::tls())?;
    tls.set_alpn_protos(b"\x08http/1.1")?;
    let connector = awc::Connector::new()
        .openssl(tls.build())
        .timeout(settings.timeout)
        .handshake_timeout(settings.timeout);
    let client = awc::Client::builder()
        .connector(connector)
        .timeout(settings.timeout)
        .disable_redirects()
        .no_default_headers()
        .add_default_header((
            header::USER_AGENT,
            concat!("hubbub/", env!("CARGO_PKG_VERSION")),
        ))
        .finish();
    Ok(Outbound {
        client,
        allow_insecure: settings.allow_insecure,
        timeout: settings.timeout,
    })
}

/// `Retry-After` as a wait: seconds, or an HTTP date (a past one is no wait).
pub fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at: SystemTime = value.parse::<HttpDate>().ok()?.into();
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Headers the client sets itself from the request and its body.
fn own_header(name: &str) -> bool {
    ["content-length", "host", "transfer-encoding", "connection"]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
}

impl Outbound {
    /// The addresses this request may connect to, in the resolver's order.
    async fn addresses(&self, url: &url::Url) -> Result<Vec<SocketAddr>, Failure> {
        let port = url.port_or_known_default().unwrap_or(443);
        let found: Vec<SocketAddr> = match url.host() {
            Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
            Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
            Some(url::Host::Domain(name)) => tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| Failure::Network(format!("resolving {name}: {e}")))?
                .collect(),
            None => return Err(Failure::Forbidden(format!("{url} has no host"))),
        };
        if self.allow_insecure {
            return Ok(found);
        }
        let mut refused = None;
        let allowed: Vec<SocketAddr> = found
            .into_iter()
            .filter(|addr| match refused_address(addr.ip()) {
                Some(why) => {
                    refused = Some(format!(
                        "{} resolves to {why} ({}), which push requests may not reach",
                        url.host_str().unwrap_or_default(),
                        addr.ip()
                    ));
                    false
                }
                None => true,
            })
            .collect();
        match (allowed.is_empty(), refused) {
            (true, Some(why)) => Err(Failure::Forbidden(why)),
            _ => Ok(allowed),
        }
    }

    async fn attempt(&self, request: Outgoing) -> Result<Reply, Failure> {
        let url = url::Url::parse(&request.url)
            .map_err(|_| Failure::Forbidden(format!("{:?} is not an absolute URL", request.url)))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_insecure => {}
            other => {
                return Err(Failure::Forbidden(format!(
                    "{other}: push requests go over https only"
                )))
            }
        }
        let addresses = self.addresses(&url).await?;
        if addresses.is_empty() {
            return Err(Failure::Network(format!("{url}: no address")));
        }
        let mut last = String::new();
        for addr in addresses.into_iter().take(MAX_ADDRESSES) {
            let mut req = self.client.post(url.as_str()).address(addr);
            for (name, value) in request.headers.iter().filter(|(n, _)| !own_header(n)) {
                req = req.append_header((name.as_str(), value.as_str()));
            }
            match req.send_body(request.body.clone()).await {
                Ok(response) => return Ok(read(response).await),
                Err(SendRequestError::Timeout)
                | Err(SendRequestError::Connect(ConnectError::Timeout)) => {
                    return Err(Failure::Timeout)
                }
                // Nothing was sent: the next address may answer.
                Err(SendRequestError::Connect(e)) => last = format!("{addr}: {e}"),
                Err(e) => return Err(Failure::Network(format!("{addr}: {e}"))),
            }
        }
        Err(Failure::Network(last))
    }
}

/// The status, `Retry-After` and at most [`MAX_BODY`] of the body (a body cut short by the far
/// end is kept as far as it came: the status is what counts).
async fn read<S>(mut response: awc::ClientResponse<S>) -> Reply
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(retry_after);
    let mut body = Vec::new();
    while body.len() < MAX_BODY {
        match response.next().await {
            Some(Ok(chunk)) => {
                let room = MAX_BODY - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Some(Err(_)) | None => break,
        }
    }
    Reply {
        status,
        retry_after,
        body,
    }
}

impl Transport for Outbound {
    fn post(&self, request: Outgoing) -> LocalBoxFuture<'_, Result<Reply, Failure>> {
        Box::pin(async move {
            match tokio::time::timeout(self.timeout, self.attempt(request)).await {
                Ok(answer) => answer,
                Err(_) => Err(Failure::Timeout),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;

    use super::*;

    fn settings(allow_insecure: bool, timeout: Duration) -> PushSettings {
        let mut s = crate::config::Settings::from_lookup(|_| None).unwrap().push;
        s.allow_insecure = allow_insecure;
        s.timeout = timeout;
        s
    }

    fn outgoing(url: &str) -> Outgoing {
        Outgoing {
            url: url.into(),
            headers: vec![
                ("TTL".into(), "60".into()),
                ("Content-Length".into(), "999".into()),
            ],
            body: b"sealed bytes".to_vec(),
        }
    }

    /// A one-shot HTTP server on 127.0.0.1: reads one request, sends `answer` (unless `None`:
    /// then it holds the connection without answering), and hands back what it read.
    fn server(answer: Option<Vec<u8>>) -> (u16, mpsc::Receiver<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = conn.read(&mut buf).unwrap_or(0);
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if seen.len() >= end + 4 + length {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let _ = tx.send(seen);
            match answer {
                Some(bytes) => {
                    let _ = conn.write_all(&bytes);
                }
                None => std::thread::sleep(Duration::from_secs(5)),
            }
        });
        (port, rx)
    }

    fn answer(head: &str, body: &[u8]) -> Vec<u8> {
        let mut bytes = format!("{head}\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    #[actix_web::test]
    async fn without_allow_insecure_only_https_to_public_addresses_is_sent() {
        let net = transport(&settings(false, Duration::from_secs(5))).unwrap();
        for url in [
            "http://example.com/push",
            "https://127.0.0.1:9/push",
            "https://10.0.0.1/push",
            "https://169.254.169.254/latest",
            "https://[::1]:9/push",
            "https://[::ffff:127.0.0.1]:9/push",
            // A name is judged by what it resolves to now.
            "https://localhost:9/push",
            "ftp://example.com/x",
            "not a url",
        ] {
            match net.post(outgoing(url)).await {
                Err(Failure::Forbidden(_)) => {}
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[actix_web::test]
    async fn a_post_carries_its_headers_and_body_and_the_answer_comes_back() {
        let (port, seen) = server(Some(answer("HTTP/1.1 201 Created", b"")));
        let net = transport(&settings(true, Duration::from_secs(5))).unwrap();

        let reply = net
            .post(outgoing(&format!("http://localhost:{port}/push/abc")))
            .await
            .unwrap();

        assert_eq!(reply.status, 201);
        let request = String::from_utf8(seen.recv().unwrap()).unwrap();
        assert!(
            request.starts_with("POST /push/abc HTTP/1.1\r\n"),
            "{request}"
        );
        let lower = request.to_ascii_lowercase();
        assert!(lower.contains("\r\nttl: 60\r\n"), "{request}");
        assert_eq!(lower.matches("content-length").count(), 1, "{request}");
        assert!(lower.contains("content-length: 12\r\n"), "{request}");
        assert!(request.ends_with("\r\n\r\nsealed bytes"), "{request}");
    }

    #[actix_web::test]
    async fn retry_after_is_read_and_the_body_cut_at_64_kib() {
        let big = vec![b'x'; 100 * 1024];
        let head = "HTTP/1.1 429 Too Many Requests\r\nretry-after: 7";
        let (port, _seen) = server(Some(answer(head, &big)));
        let net = transport(&settings(true, Duration::from_secs(5))).unwrap();

        let reply = net
            .post(outgoing(&format!("http://127.0.0.1:{port}/")))
            .await
            .unwrap();

        assert_eq!(reply.status, 429);
        assert_eq!(reply.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(reply.body.len(), MAX_BODY);
        let later = HttpDate::from(SystemTime::now() + Duration::from_secs(30)).to_string();
        let wait = retry_after(&later).unwrap();
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));
        let past = HttpDate::from(SystemTime::now() - Duration::from_secs(30)).to_string();
        assert_eq!(retry_after(&past), Some(Duration::ZERO));
        assert_eq!(retry_after("99999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("soon"), None);
    }

    #[actix_web::test]
    async fn no_answer_in_time_is_a_timeout_and_no_listener_a_network_failure() {
        let (port, _seen) = server(None);
        let net = transport(&settings(true, Duration::from_secs(1))).unwrap();
        let url = format!("http://127.0.0.1:{port}/");
        assert!(matches!(
            net.post(outgoing(&url)).await,
            Err(Failure::Timeout)
        ));

        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let url = format!("http://127.0.0.1:{port}/");
        assert!(matches!(
            net.post(outgoing(&url)).await,
            Err(Failure::Network(_))
        ));
    }
}
