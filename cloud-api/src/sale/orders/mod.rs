//! Orders: a hold becomes an order, the order is paid, paid orders get
//! tickets; refunds and cancellations revoke them.
//!
//! Order states: `pending` → `paid` → `refunded`; `pending` → `failed`
//! (declined), `cancelled`, `expired` (unpaid past its deadline) or
//! `refunded`. Nothing goes back: a success that arrives for an expired order
//! takes its stock again if it is still there, otherwise it is refunded.

use serde::{Deserialize, Serialize};

use crate::accounts::auth::Caller;
use crate::common::error::ApiError;
use crate::common::idempotency::{self, Idempotency};
use crate::db::{Db, Tx};
use crate::params;
use crate::sale::payments::{GatewayKind, Gateways, Intent, TestOutcome};
use crate::sale::promotions;

mod payment;
mod refunds;

pub use payment::{WebhookOutcome, apply_webhook};
pub(crate) use payment::{deliver, mark_paid};
use payment::{end_unpaid, record_transaction};
pub(crate) use refunds::refund_unchecked;
pub use refunds::{Cancellation, cancel_event, refund, retry_due_refunds};

/// `POST /orders` body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// The hold to buy.
    pub hold_id: String,
    /// How to pay.
    pub gateway: GatewayKind,
    /// What the test gateway should answer.
    #[serde(default)]
    pub test_outcome: TestOutcome,
    /// A discount code of the event, as the customer typed it.
    #[serde(default)]
    pub promo_code: Option<String>,
    /// Where the sale was made; default `web`.
    #[serde(default)]
    pub channel: SalesChannel,
    /// The payment method's fingerprint as the payment form reports it
    /// (e.g. a hash of the card), for fraud checks.
    #[serde(default)]
    pub payment_fingerprint: Option<String>,
}

/// Where a sale was made, for the organizer's analytics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SalesChannel {
    /// The public web shop or app.
    #[default]
    Web,
    /// Sold at the venue's box office.
    BoxOffice,
    /// Sold through a partner's integration.
    Partner,
}

impl SalesChannel {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::BoxOffice => "box_office",
            Self::Partner => "partner",
        }
    }
}

/// An order as its buyer sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Order {
    /// Id.
    pub id: i64,
    /// `pending`, `paid`, `failed`, `cancelled`, `expired` or `refunded`.
    pub status: String,
    /// Event.
    pub event_id: i64,
    /// Ticket type.
    pub ticket_type_id: i64,
    /// How many tickets.
    pub quantity: i64,
    /// Amount charged, minor units (after any discount).
    pub amount_minor: i64,
    /// Taken off by the discount code, minor units.
    pub discount_minor: i64,
    /// The discount code used, upper case.
    pub promo_code: Option<String>,
    /// Currency.
    pub currency: String,
    /// Gateway.
    pub gateway: GatewayKind,
    /// Pay before this (Unix seconds).
    pub expires_at: i64,
    /// When it was paid.
    pub paid_at: Option<i64>,
    /// The gateway's payment id.
    pub payment_id: Option<String>,
    /// For a pending Stripe payment: what the browser confirms it with.
    pub client_secret: Option<String>,
    /// Ticket ids, once paid (and, if held for review, approved).
    pub ticket_ids: Vec<i64>,
    /// `held` while fraud review withholds the tickets of a paid order,
    /// then `approved` or `rejected` (refunded); absent when never held.
    pub review: Option<String>,
}

/// What an idempotent `POST /orders` records: the order it made.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct OrderRef {
    order_id: i64,
}

/// Everything order handling needs besides the store.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The store.
    pub db: &'a Db,
    /// Payment gateways.
    pub gateways: &'a Gateways,
    /// Signs barcodes of issued tickets.
    pub signer: &'a schema::TicketSigner,
    /// Now (Unix seconds).
    pub now: i64,
}

/// Fraud scoring of an order: the rules and what the request showed.
#[derive(Debug, Clone, Copy)]
pub struct Screening<'a> {
    /// Thresholds.
    pub rules: &'a crate::sale::fraud::Rules,
    /// The sender.
    pub signals: &'a crate::sale::fraud::Signals,
}

/// Turns the caller's hold into an order and asks the gateway for payment.
/// With `screening`, an order that scores at the review threshold is paid
/// as usual but its tickets wait for the organizer's review.
pub async fn create(
    ctx: Ctx<'_>,
    caller: &Caller,
    req: &OrderRequest,
    screening: Option<Screening<'_>>,
    idempotency: Option<&Idempotency>,
    pay_seconds: i64,
) -> Result<Order, ApiError> {
    caller.require_person()?;
    if req.channel != SalesChannel::Web && !caller.is_runner() {
        return Err(ApiError::Forbidden("channel: only organizers sell through the box office or partners"));
    }
    if let Some(idem) = idempotency
        && let Some(earlier) = idem.replay::<OrderRef>(ctx.db).await?
    {
        return get(ctx.db, caller, earlier.order_id).await;
    }
    let order_id = order_for_hold(ctx, caller, req, screening, pay_seconds).await?;
    let (status, has_payment) = payment_state(ctx.db, order_id).await?;
    let mut client_secret = None;
    if status == "pending" && !has_payment {
        let amount =
            ctx.db.query_one("SELECT amount_minor, currency FROM orders WHERE id = ?1", params![order_id]).await?;
        let intent = if amount.int(0)? == 0 {
            // Fully discounted: nothing to take, so no gateway is asked.
            Ok(Intent::free(order_id))
        } else {
            ctx.gateways.create_intent(req.gateway, order_id, amount.int(0)?, &amount.text(1)?, req.test_outcome).await
        };
        let intent = match intent {
            Ok(intent) => intent,
            Err(ApiError::PaymentDeclined(why)) => {
                let mut tx = ctx.db.begin().await?;
                end_unpaid(&mut tx, order_id, "failed").await?;
                tx.commit().await?;
                return Err(ApiError::PaymentDeclined(why));
            }
            Err(e) => return Err(e),
        };
        client_secret = intent.client_secret.clone();
        let mut tx = ctx.db.begin().await?;
        let money =
            Money { gateway: req.gateway, gateway_id: &intent.gateway_id, amount: amount.int(0)?, raw: &intent.raw };
        let status = if intent.succeeded { "succeeded" } else { "pending" };
        record_transaction(&mut tx, order_id, "payment", status, money, ctx.now).await?;
        if intent.succeeded {
            mark_paid(&mut tx, ctx.signer, order_id, ctx.now).await?;
        }
        idempotency::commit_with(ctx.db, tx, idempotency, OrderRef { order_id }, ctx.now).await?;
    } else if let Some(idem) = idempotency {
        let tx = ctx.db.begin().await?;
        idempotency::commit_with(ctx.db, tx, Some(idem), OrderRef { order_id }, ctx.now).await?;
    }
    let mut order = get(ctx.db, caller, order_id).await?;
    if order.client_secret.is_none() {
        order.client_secret = client_secret;
    }
    Ok(order)
}

/// The order of the caller's hold: created now, or the one an earlier attempt made.
async fn order_for_hold(
    ctx: Ctx<'_>,
    caller: &Caller,
    req: &OrderRequest,
    screening: Option<Screening<'_>>,
    pay_seconds: i64,
) -> Result<i64, ApiError> {
    let mut tx = ctx.db.begin().await?;
    let hold = tx
        .query_opt(
            "SELECT h.user_id, h.status, h.expires_at, h.quantity, t.price_minor, t.currency, e.status,
                    h.ticket_type_id, t.event_id, h.resale_listing_id, r.price_minor, r.status
             FROM holds h JOIN ticket_types t ON t.id = h.ticket_type_id JOIN events e ON e.id = t.event_id
             LEFT JOIN resale_listings r ON r.id = h.resale_listing_id
             WHERE h.id = ?1",
            params![req.hold_id.clone()],
        )
        .await?
        .filter(|row| row.int(0).is_ok_and(|owner| caller.is_user(owner)))
        .ok_or(ApiError::NotFound("hold"))?;
    let existing = tx.query_opt("SELECT id FROM orders WHERE hold_id = ?1", params![req.hold_id.clone()]).await?;
    if let Some(row) = existing {
        return Ok(row.int(0)?);
    }
    if hold.text(6)? != "published" {
        return Err(ApiError::Conflict("the event is not on sale".into()));
    }
    // Conditional, so a release or expiry that commits first wins and no order is made.
    let ordered = tx
        .execute(
            "UPDATE holds SET status = 'ordered' WHERE id = ?1 AND status = 'active' AND expires_at > ?2",
            params![req.hold_id.clone(), ctx.now],
        )
        .await?;
    if ordered == 0 {
        return Err(ApiError::Gone("the hold expired or was released; reserve again"));
    }
    let resale = hold.opt_int(9)?;
    if resale.is_some() && (req.promo_code.is_some() || hold.opt_text(11)?.as_deref() != Some("listed")) {
        return Err(ApiError::Conflict("a resale ticket takes no discount code and must still be listed".into()));
    }
    // A resale hold is one ticket at the listing's price.
    let amount = match resale {
        Some(_) => hold.int(10)?,
        None => hold.int(4)?.saturating_mul(hold.int(3)?),
    };
    let channel = if resale.is_some() { "resale" } else { req.channel.as_str() };
    let currency = hold.text(5)?;
    let promo = match &req.promo_code {
        Some(code) => {
            let line = promotions::OrderLine {
                event_id: hold.int(8)?,
                ticket_type_id: hold.int(7)?,
                user_id: caller.id,
                amount_minor: amount,
                currency: &currency,
                now: ctx.now,
            };
            Some(promotions::apply(&mut tx, code, line).await?)
        }
        None => None,
    };
    let discount = promo.map_or(0, |p| p.discount_minor);
    let review = match screening {
        // A resale is one ticket at a capped price whose transfer must happen
        // with the payment; it is scored and recorded, never held.
        Some(screening) => {
            let attempt = Attempt { event_id: hold.int(8)?, hold_id: &req.hold_id, quantity: hold.int(3)? };
            screen(&mut tx, screening, attempt, resale.is_none(), ctx.now).await?
        }
        None => None,
    };
    let id = tx
        .query_one(
            "INSERT INTO orders (user_id, hold_id, status, amount_minor, currency, gateway, expires_at, created_at,
                 promo_code_id, discount_minor, channel, review_status, review_reasons)
             VALUES (?1, ?2, 'pending', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) RETURNING id",
            params![
                caller.id,
                req.hold_id.clone(),
                amount - discount,
                currency,
                req.gateway.as_str(),
                ctx.now + pay_seconds,
                ctx.now,
                promo.map(|p| p.code_id),
                discount,
                channel,
                review.as_ref().map(|_| "held"),
                review
            ],
        )
        .await?
        .int(0)?;
    tx.commit().await?;
    Ok(id)
}

/// What an order attempt is for.
#[derive(Debug, Clone, Copy)]
struct Attempt<'a> {
    event_id: i64,
    hold_id: &'a str,
    quantity: i64,
}

/// Scores the order and records the attempt; the reasons when it is to be held.
async fn screen(
    tx: &mut Tx,
    screening: Screening<'_>,
    Attempt { event_id, hold_id, quantity }: Attempt<'_>,
    may_hold: bool,
    now: i64,
) -> Result<Option<String>, ApiError> {
    use crate::sale::fraud;
    let (rules, signals) = (screening.rules, screening.signals);
    let history = fraud::history(fraud::Reader::Tx(tx), rules, signals, event_id, Some(hold_id), now).await?;
    let assessment = fraud::assess(rules, &history, quantity);
    fraud::record(tx, fraud::Stage::Order, signals, event_id, Some(hold_id), assessment.score, now).await?;
    if !may_hold || assessment.score < rules.review_score {
        return Ok(None);
    }
    tracing::info!(user = signals.user_id, hold = hold_id, score = assessment.score,
        reasons = ?assessment.reasons, "order held for fraud review");
    Ok(Some(format!("score {}: {}", assessment.score, assessment.reasons.join("; "))))
}

async fn payment_state(db: &Db, order_id: i64) -> Result<(String, bool), ApiError> {
    let row = db
        .query_one("SELECT status, (SELECT COUNT(*) FROM payment_transactions p WHERE p.order_id = o.id AND p.kind = 'payment' LIMIT 1)
             FROM orders o WHERE o.id = ?1", params![order_id])
        .await?;
    Ok((row.text(0)?, row.int(1)? > 0))
}

/// What a gateway said about money moving for an order.
#[derive(Debug, Clone, Copy)]
struct Money<'a> {
    gateway: GatewayKind,
    gateway_id: &'a str,
    amount: i64,
    raw: &'a str,
}

/// Reads an order; customers see only their own.
pub async fn get(db: &Db, caller: &Caller, order_id: i64) -> Result<Order, ApiError> {
    let row = db
        .query_opt(
            "SELECT o.id, o.status, t.event_id, h.ticket_type_id, h.quantity, o.amount_minor, o.currency, o.gateway,
                    o.expires_at, o.paid_at, o.user_id,
                    (SELECT p.gateway_id FROM payment_transactions p WHERE p.order_id = o.id AND p.kind = 'payment' LIMIT 1),
                    (SELECT p.raw_response FROM payment_transactions p WHERE p.order_id = o.id AND p.kind = 'payment' LIMIT 1),
                    o.discount_minor, c.code, o.review_status
             FROM orders o JOIN holds h ON h.id = o.hold_id JOIN ticket_types t ON t.id = h.ticket_type_id
             LEFT JOIN promo_codes c ON c.id = o.promo_code_id
             WHERE o.id = ?1",
            params![order_id],
        )
        .await?
        .ok_or(ApiError::NotFound("order"))?;
    if !caller.is_user(row.int(10)?) && !caller.is_admin() {
        // Organizers of the event may see it too.
        if crate::catalog::require_event_organizer(db, caller, row.int(2)?).await.is_err() {
            return Err(ApiError::NotFound("order"));
        }
    }
    let status = row.text(1)?;
    let client_secret = match (status.as_str(), row.opt_text(12)?) {
        ("pending", Some(raw)) if caller.is_user(row.int(10)?) => serde_json::from_str::<serde_json::Value>(&raw)
            .ok()
            .and_then(|v| v.get("client_secret").and_then(|s| s.as_str()).map(str::to_owned)),
        _ => None,
    };
    let ticket_ids = db
        .query("SELECT id FROM tickets WHERE order_id = ?1 ORDER BY id", params![order_id])
        .await?
        .iter()
        .map(|r| r.int(0))
        .collect::<Result<_, _>>()?;
    Ok(Order {
        id: row.int(0)?,
        status,
        event_id: row.int(2)?,
        ticket_type_id: row.int(3)?,
        quantity: row.int(4)?,
        amount_minor: row.int(5)?,
        discount_minor: row.int(13)?,
        promo_code: row.opt_text(14)?,
        currency: row.text(6)?,
        gateway: if row.text(7)? == "stripe" { GatewayKind::Stripe } else { GatewayKind::Test },
        expires_at: row.int(8)?,
        paid_at: row.opt_int(9)?,
        payment_id: row.opt_text(11)?,
        client_secret,
        ticket_ids,
        review: row.opt_text(15)?,
    })
}
