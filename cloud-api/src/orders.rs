//! Orders: a hold becomes an order, the order is paid, paid orders get
//! tickets; refunds and cancellations revoke them.
//!
//! Order states: `pending` → `paid` → `refunded`; `pending` → `failed`
//! (declined), `cancelled`, `expired` (unpaid past its deadline) or
//! `refunded`. Nothing goes back: a success that arrives for an expired order
//! takes its stock again if it is still there, otherwise it is refunded.

use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::db::{Db, Tx};
use crate::domain_events::{self, DomainEvent};
use crate::error::ApiError;
use crate::idempotency::{self, Idempotency};
use crate::inventory;
use crate::params;
use crate::payments::{GatewayKind, Gateways, Intent, Refund, TestOutcome};
use crate::tickets;
use crate::{notifications, promotions};

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
    pub rules: &'a crate::fraud::Rules,
    /// The sender.
    pub signals: &'a crate::fraud::Signals,
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
    use crate::fraud;
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

/// Records a payment or refund; one of each per order (a repeat is ignored).
async fn record_transaction(
    tx: &mut Tx,
    order_id: i64,
    kind: &str,
    status: &str,
    money: Money<'_>,
    now: i64,
) -> Result<(), ApiError> {
    tx.execute(
        "INSERT INTO payment_transactions (order_id, gateway, kind, gateway_id, status, amount_minor, raw_response, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (order_id, kind) DO NOTHING",
        params![order_id, money.gateway.as_str(), kind, money.gateway_id, status, money.amount, money.raw, now],
    )
    .await?;
    Ok(())
}

/// Marks a pending order paid and issues its tickets; `false` if it was not pending.
pub(crate) async fn mark_paid(
    tx: &mut Tx,
    signer: &schema::TicketSigner,
    order_id: i64,
    now: i64,
) -> Result<bool, ApiError> {
    let review = tx
        .query_opt(
            "UPDATE orders SET status = 'paid', paid_at = ?1 WHERE id = ?2 AND status = 'pending'
             RETURNING review_status, review_reasons",
            params![now, order_id],
        )
        .await?;
    let Some(review) = review else { return Ok(false) };
    let sold = tx
        .execute(
            "UPDATE holds SET status = 'sold' WHERE id = (SELECT hold_id FROM orders WHERE id = ?1) AND status = 'ordered'",
            params![order_id],
        )
        .await?;
    if sold != 1 {
        // A pending order always has an ordered hold; anything else is a bug, and no ticket is issued.
        return Err(ApiError::Internal(format!("order {order_id} is pending but its hold is not ordered")));
    }
    if review.opt_text(0)?.as_deref() == Some("held") {
        // Paid, stock sold, tickets withheld: the organizer decides from the case list.
        crate::cases::order_held(tx, order_id, &review.opt_text(1)?.unwrap_or_default(), now).await?;
    } else {
        deliver(tx, signer, order_id, now).await?;
    }
    let o = tx
        .query_one(
            "SELECT o.amount_minor, o.currency, o.gateway, o.channel, h.ticket_type_id, h.quantity, t.event_id
             FROM orders o JOIN holds h ON h.id = o.hold_id JOIN ticket_types t ON t.id = h.ticket_type_id
             WHERE o.id = ?1",
            params![order_id],
        )
        .await?;
    let paid = DomainEvent::OrderPaid {
        order_id,
        event_id: o.int(6)?,
        ticket_type_id: o.int(4)?,
        quantity: o.int(5)?,
        amount_minor: o.int(0)?,
        currency: o.text(1)?,
        gateway: o.text(2)?,
        channel: o.text(3)?,
        paid_at: now,
    };
    domain_events::record(tx, &paid, now).await?;
    Ok(true)
}

/// Issues a paid order's tickets, completes its resale and queues the
/// customer's confirmation: at payment, or when review approves the order.
pub(crate) async fn deliver(
    tx: &mut Tx,
    signer: &schema::TicketSigner,
    order_id: i64,
    now: i64,
) -> Result<(), ApiError> {
    tickets::issue(tx, signer, order_id, now).await?;
    let listing = tx
        .query_one(
            "SELECT resale_listing_id FROM holds WHERE id = (SELECT hold_id FROM orders WHERE id = ?1)",
            params![order_id],
        )
        .await?
        .opt_int(0)?;
    if let Some(listing) = listing {
        crate::resale::complete(tx, listing, order_id, now).await?;
    }
    notifications::order_paid(tx, order_id, now).await
}

/// Ends an unpaid order in `status` and puts its stock back.
async fn end_unpaid(tx: &mut Tx, order_id: i64, status: &str) -> Result<bool, ApiError> {
    let changed = tx
        .execute("UPDATE orders SET status = ?1 WHERE id = ?2 AND status = 'pending'", params![status, order_id])
        .await?;
    if changed == 1 {
        let hold = tx.query_one("SELECT hold_id FROM orders WHERE id = ?1", params![order_id]).await?.text(0)?;
        inventory::end_hold(tx, &hold, "ordered", "released").await?;
    }
    Ok(changed == 1)
}

/// Refunds a paid order (or cancels an unpaid one): tickets revoked, stock back on sale.
pub(crate) async fn revoke(tx: &mut Tx, order_id: i64, now: i64) -> Result<bool, ApiError> {
    if end_unpaid(tx, order_id, "refunded").await? {
        return Ok(true);
    }
    let changed = tx
        .execute(
            "UPDATE orders SET status = 'refunded' WHERE id = ?1 AND status IN ('paid', 'refunding')",
            params![order_id],
        )
        .await?;
    if changed == 0 {
        return Ok(false);
    }
    tickets::revoke_order(tx, order_id, now).await?;
    crate::resale::undo(tx, order_id, now).await?;
    let hold = tx.query_one("SELECT hold_id FROM orders WHERE id = ?1", params![order_id]).await?.text(0)?;
    tx.execute("UPDATE holds SET status = 'refunded' WHERE id = ?1", params![hold.clone()]).await?;
    inventory::put_back(tx, &hold).await?;
    Ok(true)
}

/// `POST /orders/{id}/refund`: the event's organizer (or an admin) refunds an order in full.
pub async fn refund(ctx: Ctx<'_>, caller: &Caller, order_id: i64) -> Result<Order, ApiError> {
    let event = ctx
        .db
        .query_opt(
            "SELECT t.event_id FROM orders o JOIN holds h ON h.id = o.hold_id JOIN ticket_types t ON t.id = h.ticket_type_id
             WHERE o.id = ?1",
            params![order_id],
        )
        .await?
        .ok_or(ApiError::NotFound("order"))?
        .int(0)?;
    crate::catalog::require_event_organizer(ctx.db, caller, event).await?;
    refund_unchecked(ctx, order_id).await?;
    get(ctx.db, &Caller { id: 0, role: crate::auth::Role::Admin, venue: None }, order_id).await
}

/// Refunds through the gateway, then records it. Also used for event cancellation.
pub(crate) async fn refund_unchecked(ctx: Ctx<'_>, order_id: i64) -> Result<(), ApiError> {
    let row = ctx
        .db
        .query_opt(
            "SELECT o.status, o.gateway, o.amount_minor,
                    (SELECT p.gateway_id FROM payment_transactions p WHERE p.order_id = o.id AND p.kind = 'payment' LIMIT 1)
             FROM orders o WHERE o.id = ?1",
            params![order_id],
        )
        .await?
        .ok_or(ApiError::NotFound("order"))?;
    let status = row.text(0)?;
    if status != "paid" {
        let mut tx = ctx.db.begin().await?;
        let cancelled = end_unpaid(&mut tx, order_id, "cancelled").await?;
        tx.commit().await?;
        return if cancelled {
            Ok(())
        } else {
            Err(ApiError::Conflict(format!("the order is {status}; nothing to refund")))
        };
    }
    let gateway = if row.text(1)? == "stripe" { GatewayKind::Stripe } else { GatewayKind::Test };
    let payment = row.opt_text(3)?.unwrap_or_default();
    // Claimed first, so two refunds of one order never both reach the gateway.
    // Claimed first, in one statement with the resale checks, so two refunds of
    // one order never both reach the gateway and a resale paid meanwhile cannot
    // leave its seat on sale again.
    let claimed = ctx
        .db
        .execute(
            "UPDATE orders SET status = 'refunding' WHERE id = ?1 AND status = 'paid'
             AND NOT EXISTS (SELECT 1 FROM tickets k WHERE k.order_id = ?1 AND k.resold_to IS NOT NULL)
             AND NOT EXISTS (SELECT 1 FROM resale_listings r JOIN tickets k ON k.id = r.ticket_id
                             JOIN holds h ON h.resale_listing_id = r.id
                             WHERE k.order_id = ?1 AND r.status = 'listed' AND h.status IN ('active', 'ordered'))",
            params![order_id],
        )
        .await?;
    if claimed == 0 {
        return Err(ApiError::Conflict(
            "the order is being refunded already, or a ticket of it is resold or reserved by a resale buyer".into(),
        ));
    }
    let refund = if row.int(2)? == 0 {
        Ok(Refund::free(order_id))
    } else {
        ctx.gateways.refund(gateway, &payment, order_id).await
    };
    let refund = match refund {
        Ok(refund) => refund,
        Err(e) => {
            ctx.db
                .execute("UPDATE orders SET status = 'paid' WHERE id = ?1 AND status = 'refunding'", params![order_id])
                .await?;
            return Err(e);
        }
    };
    let mut tx = ctx.db.begin().await?;
    let money = Money { gateway, gateway_id: &refund.gateway_id, amount: row.int(2)?, raw: &refund.raw };
    record_transaction(&mut tx, order_id, "refund", "succeeded", money, ctx.now).await?;
    revoke(&mut tx, order_id, ctx.now).await?;
    tx.commit().await?;
    Ok(())
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

/// What a webhook delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookOutcome {
    /// The event changed an order.
    Applied,
    /// Seen before (Stripe retries); nothing changed.
    Duplicate,
    /// Recorded; nothing to change (unknown payment, or already in that state).
    NoChange,
}

/// Applies a signature-checked Stripe event. The event id is recorded in the
/// same transaction as its effect, so a redelivery changes nothing.
pub async fn apply_webhook(
    ctx: Ctx<'_>,
    event: &crate::payments::webhook::WebhookEvent,
) -> Result<WebhookOutcome, ApiError> {
    use crate::payments::webhook::PaymentEvent;
    let mut tx = ctx.db.begin().await?;
    let recorded = tx
        .execute(
            "INSERT INTO webhook_events (id, kind, created, received_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO NOTHING",
            params![event.id.clone(), event.kind.clone(), event.created, ctx.now],
        )
        .await?;
    if recorded == 0 {
        return Ok(WebhookOutcome::Duplicate);
    }
    let intent = match &event.payment {
        PaymentEvent::Succeeded { intent } | PaymentEvent::Canceled { intent } | PaymentEvent::Refunded { intent } => {
            intent
        }
        PaymentEvent::Ignored => {
            tx.commit().await?;
            return Ok(WebhookOutcome::NoChange);
        }
    };
    let order = tx
        .query_opt(
            "SELECT order_id FROM payment_transactions WHERE gateway = 'stripe' AND kind = 'payment' AND gateway_id = ?1",
            params![intent.clone()],
        )
        .await?;
    let Some(order_id) = order.map(|r| r.int(0)).transpose()? else {
        tracing::warn!(event = %event.id, %intent, "webhook for a payment this service did not create");
        tx.commit().await?;
        return Ok(WebhookOutcome::NoChange);
    };
    let changed = match &event.payment {
        PaymentEvent::Succeeded { .. } => succeed(&mut tx, ctx, order_id).await?,
        PaymentEvent::Canceled { .. } => end_unpaid(&mut tx, order_id, "cancelled").await?,
        PaymentEvent::Refunded { .. } => revoke(&mut tx, order_id, ctx.now).await?,
        PaymentEvent::Ignored => false,
    };
    tx.execute(
        "UPDATE payment_transactions SET status = ?1 WHERE order_id = ?2 AND kind = 'payment'",
        params![event.kind.trim_start_matches("payment_intent.").trim_start_matches("charge."), order_id],
    )
    .await?;
    tx.commit().await?;
    let late = matches!(event.payment, PaymentEvent::Succeeded { .. }) && !changed;
    if late && status_of(ctx.db, order_id).await? == "refund_due" {
        // Paid for what could not be honoured: give the money back. If the
        // gateway fails now, the sweeper tries again; the event is recorded.
        if let Err(e) = refund_late(ctx, order_id).await {
            tracing::warn!(order = order_id, error = %e, "refund of a late payment failed; will retry");
        }
    }
    Ok(if changed { WebhookOutcome::Applied } else { WebhookOutcome::NoChange })
}

async fn status_of(db: &Db, order_id: i64) -> Result<String, ApiError> {
    Ok(db.query_one("SELECT status FROM orders WHERE id = ?1", params![order_id]).await?.text(0)?)
}

/// A success for a pending order pays it. One for an order that expired
/// meanwhile takes its stock again if it is still there. Anything else (stock
/// gone, order cancelled or declined, event called off) is marked for refund.
async fn succeed(tx: &mut Tx, ctx: Ctx<'_>, order_id: i64) -> Result<bool, ApiError> {
    // Lock the order first, so the sweeper or a cancellation cannot change it under us.
    tx.execute("UPDATE orders SET status = status WHERE id = ?1", params![order_id]).await?;
    let row = tx
        .query_one(
            "SELECT o.status, o.hold_id, e.status FROM orders o JOIN holds h ON h.id = o.hold_id
             JOIN ticket_types t ON t.id = h.ticket_type_id JOIN events e ON e.id = t.event_id WHERE o.id = ?1",
            params![order_id],
        )
        .await?;
    let (status, hold, event_on) = (row.text(0)?, row.text(1)?, row.text(2)? == "published");
    let special = tx
        .query_one(
            "SELECT h.resale_listing_id, o.promo_code_id FROM orders o JOIN holds h ON h.id = o.hold_id WHERE o.id = ?1",
            params![order_id],
        )
        .await?;
    let resale = special.opt_int(0)?;
    if let Some(listing) = resale
        && (status == "expired" || (status == "pending" && !crate::resale::still_for_sale(tx, listing).await?))
    {
        // The listing or its ticket changed while the buyer paid: no ticket, the money back.
        return mark_refund_due(tx, order_id, &status).await;
    }
    // A revived discounted order could pass its code's limit: the money goes back instead.
    let discounted = special.opt_int(1)?.is_some();
    match status.as_str() {
        "pending" if event_on => mark_paid(tx, ctx.signer, order_id, ctx.now).await,
        "expired" if event_on && !discounted => {
            for _ in 0..MAX_RETAKES {
                tx.execute("SAVEPOINT retake", &[]).await?;
                match inventory::retake(tx, &hold).await? {
                    inventory::Retake::Taken => {
                        tx.execute("RELEASE SAVEPOINT retake", &[]).await?;
                        tx.execute(
                            "UPDATE orders SET status = 'pending' WHERE id = ?1 AND status = 'expired'",
                            params![order_id],
                        )
                        .await?;
                        return mark_paid(tx, ctx.signer, order_id, ctx.now).await;
                    }
                    // Rolling back to the savepoint also lets go of the rows it locked.
                    outcome => {
                        tx.execute("ROLLBACK TO SAVEPOINT retake", &[]).await?;
                        tx.execute("RELEASE SAVEPOINT retake", &[]).await?;
                        if matches!(outcome, inventory::Retake::Gone) {
                            break;
                        }
                    }
                }
            }
            mark_refund_due(tx, order_id, &status).await
        }
        "pending" | "expired" | "cancelled" | "failed" => mark_refund_due(tx, order_id, &status).await,
        _ => Ok(false),
    }
}

/// Tries a late payment's stock this many times before refunding it.
const MAX_RETAKES: usize = 5;

async fn mark_refund_due(tx: &mut Tx, order_id: i64, from: &str) -> Result<bool, ApiError> {
    if from == "pending" {
        // Its event was called off while the customer paid: its stock goes back too.
        let hold = tx.query_one("SELECT hold_id FROM orders WHERE id = ?1", params![order_id]).await?.text(0)?;
        inventory::end_hold(tx, &hold, "ordered", "released").await?;
    }
    tx.execute("UPDATE orders SET status = 'refund_due' WHERE id = ?1 AND status = ?2", params![order_id, from])
        .await?;
    Ok(false)
}

/// Refunds payments that arrived for orders that could not be honoured; the
/// sweeper calls this, so a gateway that was down is tried again later.
pub async fn retry_due_refunds(ctx: Ctx<'_>) -> Result<usize, ApiError> {
    let due = ctx.db.query("SELECT id FROM orders WHERE status = 'refund_due' ORDER BY id LIMIT 100", &[]).await?;
    let mut done = 0;
    for row in due {
        let id = row.int(0)?;
        match refund_late(ctx, id).await {
            Ok(()) => done += 1,
            Err(e) => tracing::warn!(order = id, error = %e, "refund of a late payment failed; will retry"),
        }
    }
    Ok(done)
}

async fn refund_late(ctx: Ctx<'_>, order_id: i64) -> Result<(), ApiError> {
    let payment = ctx
        .db
        .query_one(
            "SELECT gateway_id, amount_minor FROM payment_transactions WHERE order_id = ?1 AND kind = 'payment'",
            params![order_id],
        )
        .await?;
    let refund = ctx.gateways.refund(GatewayKind::Stripe, &payment.text(0)?, order_id).await?;
    let mut tx = ctx.db.begin().await?;
    let money = Money {
        gateway: GatewayKind::Stripe,
        gateway_id: &refund.gateway_id,
        amount: payment.int(1)?,
        raw: &refund.raw,
    };
    record_transaction(&mut tx, order_id, "refund", "succeeded", money, ctx.now).await?;
    tx.execute("UPDATE orders SET status = 'refunded' WHERE id = ?1 AND status = 'refund_due'", params![order_id])
        .await?;
    tx.commit().await?;
    Ok(())
}

/// What cancelling an event did.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Cancellation {
    /// Paid orders refunded.
    pub refunded: u32,
    /// Unpaid orders cancelled.
    pub cancelled: u32,
    /// Orders whose refund failed at the gateway (retry by cancelling again).
    pub failed: u32,
}

/// Calls an event off: no longer listed or sold, every order refunded or cancelled,
/// every ticket revoked (so the next manifest turns them away at the door).
pub async fn cancel_event(ctx: Ctx<'_>, caller: &Caller, event_id: i64) -> Result<Cancellation, ApiError> {
    crate::catalog::require_event_organizer(ctx.db, caller, event_id).await?;
    let mut tx = ctx.db.begin().await?;
    tx.execute("UPDATE events SET status = 'cancelled' WHERE id = ?1", params![event_id]).await?;
    crate::read_model::event_changed(&mut tx, event_id, ctx.now).await?;
    tx.commit().await?;
    let orders = ctx
        .db
        .query(
            "SELECT o.id, o.status FROM orders o JOIN holds h ON h.id = o.hold_id JOIN ticket_types t ON t.id = h.ticket_type_id
             WHERE t.event_id = ?1 AND o.status IN ('paid', 'pending') ORDER BY o.id",
            params![event_id],
        )
        .await?;
    let mut result = Cancellation { refunded: 0, cancelled: 0, failed: 0 };
    for row in orders {
        let paid = row.text(1)? == "paid";
        match refund_unchecked(ctx, row.int(0)?).await {
            Ok(()) if paid => result.refunded += 1,
            Ok(()) => result.cancelled += 1,
            Err(e) => {
                tracing::warn!(order = row.int(0)?, error = %e, "refund on cancellation failed");
                result.failed += 1;
            }
        }
    }
    // Holds not yet ordered go back too, so nothing is left reserved for a cancelled event.
    let holds = ctx
        .db
        .query(
            "SELECT h.id FROM holds h JOIN ticket_types t ON t.id = h.ticket_type_id WHERE t.event_id = ?1 AND h.status = 'active'",
            params![event_id],
        )
        .await?;
    for hold in holds {
        let mut tx = ctx.db.begin().await?;
        inventory::end_hold(&mut tx, &hold.text(0)?, "active", "released").await?;
        tx.commit().await?;
    }
    Ok(result)
}
