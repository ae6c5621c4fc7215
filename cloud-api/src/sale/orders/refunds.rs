//! Refunds: an organizer's refund, refunds that failed and are retried, and
//! the cancellation of a whole event with every order refunded.

use serde::{Deserialize, Serialize};

use super::payment::{end_unpaid, record_transaction, revoke};
use super::{Ctx, Money, Order, get};
use crate::accounts::auth::Caller;
use crate::common::error::ApiError;
use crate::db::Tx;
use crate::params;
use crate::sale::inventory;
use crate::sale::payments::{GatewayKind, Refund};

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
    get(ctx.db, &Caller { id: 0, role: crate::accounts::auth::Role::Admin, venue: None }, order_id).await
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

pub(super) async fn mark_refund_due(tx: &mut Tx, order_id: i64, from: &str) -> Result<bool, ApiError> {
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

pub(super) async fn refund_late(ctx: Ctx<'_>, order_id: i64) -> Result<(), ApiError> {
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
    crate::catalog::read_model::event_changed(&mut tx, event_id, ctx.now).await?;
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
