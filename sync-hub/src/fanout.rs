//! The admissions broadcast: what the core committed, gathered for a moment
//! and sent to every gate as few signed frames as will hold it.
//!
//! A verdict is what a person at a gate waits on; the broadcast is how every
//! other gate learns of the admission, and it has 50 ms to get there. So the
//! core hands admissions here instead of sealing them right behind its
//! replies: they leave [`WINDOW`] after the first of them, merged. A verdict
//! then goes out without a hundred sends competing with it for the hub's CPU,
//! and a burst of claims and scans costs one frame per gate per window rather
//! than one per commit.

use std::time::Duration;

use schema::sync::{Admission, HUB_ID, HubMessage, MAX_BATCH, NodeKey, Recipient};
use tokio::sync::mpsc;

use crate::core::Outbound;

/// How long admissions wait for more before they go.
/// (`tixgate-bench hub` over QUIC, window 0 → 1 ms: claim p99 2.1–2.6 → 0.8–1.0 ms,
/// ingest 59–77k → 137–145k scans/s, broadcast p99 2.6–2.8 → 5.7–6.7 ms.)
pub const WINDOW: Duration = Duration::from_millis(1);

/// Where the core puts committed admissions.
#[derive(Debug, Clone)]
pub struct Fanout(mpsc::UnboundedSender<Vec<Admission>>);

impl Fanout {
    /// A fan-out and the receiver for [`run`].
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Vec<Admission>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(tx), rx)
    }

    /// Queues committed admissions, in commit order. Returns them if the
    /// fan-out has stopped (the hub is shutting down).
    pub fn send(&self, admissions: Vec<Admission>) -> Result<(), Vec<Admission>> {
        self.0.send(admissions).map_err(|e| e.0)
    }
}

/// Sends what arrives, merged per window and in order, until every [`Fanout`]
/// is dropped; what is queued then still goes out.
pub async fn run(mut queued: mpsc::UnboundedReceiver<Vec<Admission>>, hub_key: NodeKey, deliver: impl Fn(Outbound)) {
    while let Some(mut admissions) = queued.recv().await {
        tokio::time::sleep(WINDOW).await;
        while let Ok(more) = queued.try_recv() {
            admissions.extend(more);
        }
        for frame in seal(&hub_key, &admissions) {
            deliver(Outbound::All(frame));
        }
    }
}

/// Admissions as broadcast frames of at most [`MAX_BATCH`] each.
pub fn seal(hub_key: &NodeKey, admissions: &[Admission]) -> Vec<Vec<u8>> {
    admissions
        .chunks(MAX_BATCH)
        .map(|chunk| hub_key.seal(HUB_ID, Recipient::Everyone, &HubMessage::Admissions(chunk.to_vec()).encode()))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use schema::entry::Direction;
    use schema::hlc::HlcTimestamp;
    use schema::sync::frame;

    use super::*;

    fn admission(seq: u64) -> Admission {
        Admission {
            ticket_id: seq,
            list_id: 1,
            direction: Direction::Entry,
            at: HlcTimestamp(seq),
            gate: "north-1".into(),
            annulled: false,
            key: format!("c:{seq}"),
            seq,
        }
    }

    #[tokio::test]
    async fn admissions_of_one_window_go_as_one_frame_in_order_and_the_rest_after_the_core_stops() {
        let hub_key = NodeKey::from_secret_bytes(&[7; 32]);
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (fanout, queued) = Fanout::new();
        let log = Arc::clone(&sent);
        let task = tokio::spawn(run(queued, hub_key.clone(), move |out| log.lock().unwrap().push(out)));
        fanout.send(vec![admission(1), admission(2)]).unwrap();
        fanout.send(vec![admission(3)]).unwrap();
        tokio::time::sleep(WINDOW * 10).await;
        fanout.send((4..=4 + MAX_BATCH as u64).map(admission).collect()).unwrap();
        drop(fanout);
        task.await.unwrap();

        let public = hub_key.public();
        let seqs: Vec<Vec<u64>> = std::mem::take(&mut *sent.lock().unwrap())
            .into_iter()
            .map(|out| {
                let Outbound::All(bytes) = out else { panic!("a broadcast goes to every gate") };
                let opened = frame::open(&bytes, |s| (s == HUB_ID).then_some(public)).unwrap();
                assert_eq!(opened.recipient, Recipient::Everyone);
                let Ok(HubMessage::Admissions(list)) = HubMessage::decode(opened.body) else { panic!("admissions") };
                list.iter().map(|a| a.seq).collect()
            })
            .collect();
        assert_eq!(seqs.len(), 3, "one window merged; then more than a frame holds, split in two");
        assert_eq!(seqs[0], vec![1, 2, 3]);
        assert_eq!(seqs[1].len(), MAX_BATCH);
        assert_eq!(seqs[1..].concat(), (4..=4 + MAX_BATCH as u64).collect::<Vec<_>>());
    }
}
