//! Payment outcomes: a success marks the order paid and issues its tickets
//! (or refunds it when its stock is gone), a decline or an expiry ends it, and
//! the gateway's webhook applies each outcome once.

use serde::{Deserialize, Serialize};

use super::refunds::{mark_refund_due, refund_late};
use super::{Ctx, Money};
use crate::common::error::ApiError;
use crate::db::{Db, Tx};
use crate::domain_events::{self, DomainEvent};
use crate::notifications;
use crate::params;
use crate::sale::inventory;
use crate::tickets;

/// Records a payment or refund; one of each per order (a repeat is ignored).
pub(super) async fn record_transaction(
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
        crate::sale::cases::order_held(tx, order_id, &review.opt_text(1)?.unwrap_or_default(), now).await?;
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
        crate::sale::resale::complete(tx, listing, order_id, now).await?;
    }
    notifications::order_paid(tx, order_id, now).await
}

/// Ends an unpaid order in `status` and puts its stock back.
pub(super) async fn end_unpaid(tx: &mut Tx, order_id: i64, status: &str) -> Result<bool, ApiError> {
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
    crate::sale::resale::undo(tx, order_id, now).await?;
    let hold = tx.query_one("SELECT hold_id FROM orders WHERE id = ?1", params![order_id]).await?.text(0)?;
    tx.execute("UPDATE holds SET status = 'refunded' WHERE id = ?1", params![hold.clone()]).await?;
    inventory::put_back(tx, &hold).await?;
    Ok(true)
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
    event: &crate::sale::payments::webhook::WebhookEvent,
) -> Result<WebhookOutcome, ApiError> {
    use crate::sale::payments::webhook::PaymentEvent;
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

pub(super) async fn status_of(db: &Db, order_id: i64) -> Result<String, ApiError> {
    Ok(db.query_one("SELECT status FROM orders WHERE id = ?1", params![order_id]).await?.text(0)?)
}

/// A success for a pending order pays it. One for an order that expired
/// meanwhile takes its stock again if it is still there. Anything else (stock
/// gone, order cancelled or declined, event called off) is marked for refund.
pub(super) async fn succeed(tx: &mut Tx, ctx: Ctx<'_>, order_id: i64) -> Result<bool, ApiError> {
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
        && (status == "expired" || (status == "pending" && !crate::sale::resale::still_for_sale(tx, listing).await?))
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
