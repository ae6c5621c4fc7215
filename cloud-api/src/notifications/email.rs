//! E-mail over SMTP (lettre): one message per notification, a plain-text body
//! and a QR code per static ticket as a PNG attachment.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::SendError;

/// An SMTP relay and the sender address.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// A file attached to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Its name, e.g. `ticket-12.png`.
    pub name: String,
    /// `image/png`.
    pub content_type: &'static str,
    /// Bytes.
    pub bytes: Vec<u8>,
}

/// A message ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// Recipient address.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// Attachments.
    pub files: Vec<File>,
    /// The `Message-ID`, the same on every attempt, so a message sent twice
    /// (a crash between the relay's OK and our record of it) is recognisably one.
    pub message_id: String,
}

impl Mailer {
    /// A relay at `smtp_url` (`smtp://host:port`, `smtp://…?tls=required`, `smtps://user:pass@host`).
    pub fn new(smtp_url: &str, from: &str) -> Result<Self, String> {
        let from: Mailbox = from.parse().map_err(|e| format!("from: {e}"))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(|e| format!("smtp_url: {e}"))?
            .timeout(Some(Duration::from_secs(30)))
            .build();
        Ok(Self { transport, from })
    }

    /// Checks a relay URL without connecting (and without a runtime: building
    /// the transport starts its pool's task).
    pub fn check_url(smtp_url: &str) -> Result<(), String> {
        AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url).map(|_| ()).map_err(|e| e.to_string())
    }

    /// The domain of the sender address, for message ids.
    pub fn domain(&self) -> &str {
        self.from.email.domain()
    }

    /// Sends one message; the relay's answer decides whether a retry can help.
    pub async fn send(&self, email: &Email) -> Result<(), SendError> {
        let to: Mailbox =
            email.to.parse().map_err(|e| SendError::Permanent(format!("recipient {:?}: {e}", email.to)))?;
        let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(email.body.clone()));
        for file in &email.files {
            let content_type = ContentType::parse(file.content_type)
                .map_err(|e| SendError::Permanent(format!("{}: {e}", file.content_type)))?;
            parts = parts.singlepart(Attachment::new(file.name.clone()).body(file.bytes.clone(), content_type));
        }
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(email.message_id.clone()))
            .multipart(parts)
            .map_err(|e| SendError::Permanent(format!("building the message: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(format!("SMTP: {e}"))),
            Err(e) => Err(SendError::Transient(format!("SMTP: {e}"))),
        }
    }
}
