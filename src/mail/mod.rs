//! Outgoing mail behind the [`Mailer`] trait: an SMTP implementation (lettre) for real use, and
//! whatever tests need. Messages are built here from plain parts so callers never touch MIME.

use crate::config::MailConfig;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// A mail to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub reply_to: Option<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// `(file name, content type, bytes)`.
    pub attachments: Vec<(String, String, Vec<u8>)>,
}

/// Why a mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("no SMTP server is configured (mail.smtp_url)")]
    NotConfigured,
    #[error("“{0}” is not a mail address")]
    Address(String),
    #[error("the mail could not be built: {0}")]
    Build(String),
    #[error("the SMTP server refused or could not be reached: {0}")]
    Send(String),
}

/// Sends mail.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

/// Checks a mail address the way the mail will be built (lettre's parser).
pub fn valid_address(address: &str) -> bool {
    address.parse::<lettre::Address>().is_ok()
}

/// SMTP through lettre.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// `Ok(None)` when no server is configured.
    pub fn from_config(config: &MailConfig) -> Result<Option<Self>, MailError> {
        if config.smtp_url.is_empty() {
            return Ok(None);
        }
        crate::install_crypto_provider();
        // lettre's message may quote the URL: say which setting is wrong instead.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(config.smtp_url.expose())
            .map_err(|_| MailError::Build("mail.smtp_url is not a usable SMTP URL".to_owned()))?
            .timeout(Some(std::time::Duration::from_secs(30)))
            .build();
        let from = config
            .from
            .parse()
            .map_err(|_| MailError::Address(config.from.clone()))?;
        Ok(Some(Self { transport, from }))
    }

    fn message(&self, mail: &Mail) -> Result<Message, MailError> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|_| MailError::Address(mail.to.clone()))?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject);
        if let Some(reply_to) = &mail.reply_to {
            builder = builder.reply_to(
                reply_to
                    .parse()
                    .map_err(|_| MailError::Address(reply_to.clone()))?,
            );
        }
        let body = MultiPart::alternative()
            .singlepart(SinglePart::plain(mail.text.clone()))
            .singlepart(SinglePart::html(mail.html.clone()));
        let mut mixed = MultiPart::mixed().multipart(body);
        for (name, content_type, bytes) in &mail.attachments {
            let content_type =
                ContentType::parse(content_type).map_err(|e| MailError::Build(e.to_string()))?;
            mixed =
                mixed.singlepart(Attachment::new(name.clone()).body(bytes.clone(), content_type));
        }
        builder
            .multipart(mixed)
            .map_err(|e| MailError::Build(e.to_string()))
    }
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = self.message(mail)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| MailError::Send(e.to_string()))
    }
}
