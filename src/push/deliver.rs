//! One push to one subscription: built by [`crate::push::webpush`] or [`crate::push::fcm`],
//! sent through the transport, and its answer read as an [`Outcome`].

use crate::domain::PushKind;
pub use crate::push::notification::{Notification, Outcome};
use crate::store::push::SubscriptionRow;

/// Everything needed to send to either kind of subscription.
#[derive(Debug)]
pub struct Senders {
    pub webpush: crate::push::webpush::WebPush,
    /// `None` when `HUBBUB_FCM_CREDENTIALS` is not set.
    pub fcm: Option<crate::push::fcm::Fcm>,
}

impl Senders {
    /// Web Push signed with `webpush`'s key, and FCM if `settings` name a service account (its
    /// file is read now, so that a bad one stops the start with a clear error).
    pub fn new(
        webpush: crate::push::webpush::WebPush,
        settings: &crate::config::PushSettings,
    ) -> anyhow::Result<Senders> {
        let fcm = match &settings.fcm_credentials {
            Some(path) => Some(crate::push::fcm::Fcm::load(path, &settings.fcm_endpoint)?),
            None => None,
        };
        Ok(Senders { webpush, fcm })
    }

    /// Sends `notification` to `subscription` once (no retries: the worker decides those).
    pub async fn send(
        &self,
        transport: &dyn crate::push::transport::Transport,
        subscription: &SubscriptionRow,
        notification: &Notification,
    ) -> Outcome {
        match subscription.kind {
            PushKind::WebPush => match self.webpush.request(subscription, notification) {
                Ok(request) => crate::push::webpush::classify(transport.post(request).await),
                Err(why) => Outcome::Failed(why),
            },
            PushKind::Fcm => match &self.fcm {
                Some(fcm) => {
                    fcm.send(transport, &subscription.target, notification)
                        .await
                }
                None => Outcome::Failed("FCM is not configured (HUBBUB_FCM_CREDENTIALS)".into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use futures_util::future::LocalBoxFuture;

    use super::*;
    use crate::domain::{Id, Time};
    use crate::push::transport::{Failure, Outgoing, Reply, Transport};
    use crate::push::webpush::{generate_key, WebPush};

    /// Answers every POST with `status` and keeps the URLs it was sent to.
    struct Answering {
        status: u16,
        urls: RefCell<Vec<String>>,
    }

    impl Transport for Answering {
        fn post(&self, request: Outgoing) -> LocalBoxFuture<'_, Result<Reply, Failure>> {
            self.urls.borrow_mut().push(request.url);
            let status = self.status;
            Box::pin(async move {
                Ok(Reply {
                    status,
                    retry_after: None,
                    body: Vec::new(),
                })
            })
        }
    }

    fn answering(status: u16) -> Answering {
        Answering {
            status,
            urls: RefCell::new(Vec::new()),
        }
    }

    fn row(kind: PushKind, target: &str) -> SubscriptionRow {
        let (keys, auth) = ece::generate_keypair_and_auth_secret().unwrap();
        let public = keys.raw_components().unwrap().public_key().to_vec();
        let b64 = |b: &[u8]| {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
        };
        SubscriptionRow {
            id: Id::new(),
            user_id: Id::new(),
            credential_id: Id::new(),
            kind,
            target: target.into(),
            p256dh: (kind == PushKind::WebPush).then(|| b64(&public)),
            auth: (kind == PushKind::WebPush).then(|| b64(&auth)),
            created_at: Time::now(),
        }
    }

    fn senders() -> Senders {
        Senders {
            webpush: WebPush::new(&generate_key(), "mailto:a@b.c").unwrap(),
            fcm: None,
        }
    }

    fn notification() -> Notification {
        Notification {
            event_id: 1,
            payload: serde_json::Map::new(),
        }
    }

    #[tokio::test]
    async fn a_web_push_subscription_is_posted_to_its_endpoint_and_the_answer_read() {
        let web = row(PushKind::WebPush, "https://push.example.net/s/1");
        let ok = answering(201);
        assert_eq!(
            senders().send(&ok, &web, &notification()).await,
            Outcome::Delivered
        );
        assert_eq!(*ok.urls.borrow(), vec!["https://push.example.net/s/1"]);
        let gone = answering(410);
        assert_eq!(
            senders().send(&gone, &web, &notification()).await,
            Outcome::Gone
        );
    }

    #[tokio::test]
    async fn fcm_without_credentials_or_web_push_without_keys_fails_without_a_request() {
        let net = answering(200);
        let fcm = row(PushKind::Fcm, "device-token");
        assert!(matches!(
            senders().send(&net, &fcm, &notification()).await,
            Outcome::Failed(_)
        ));
        let mut keyless = row(PushKind::WebPush, "https://push.example.net/s/2");
        keyless.p256dh = None;
        assert!(matches!(
            senders().send(&net, &keyless, &notification()).await,
            Outcome::Failed(_)
        ));
        assert!(net.urls.borrow().is_empty());
    }
}
