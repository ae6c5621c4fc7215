//! The people at the doors: who comes to which gate in each part of the night,
//! what the gate must answer each of them, and what it did answer.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use schema::{TicketClaims, TicketFlags, TicketSigner, Validity};
use serde_json::Value;
use tixgate_tests::venue_fixture::Daemon;

/// How long a gate may take to answer one person.
const ANSWER_WITHIN: Duration = Duration::from_secs(20);

/// Who someone at the door is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A ticket bought online, first time at the door.
    Entry,
    /// The same, its QR image downloaded from the cloud and read back by the
    /// gate's QR decoder, as a camera would see a phone screen.
    PhoneScreen,
    /// A copy of a ticket that is already inside, at another gate.
    Screenshot,
    /// A ticket refunded before the doors opened.
    Refunded,
    /// A code signed by a key that is not the venue's issuer.
    Forged,
    /// A real code with one character changed.
    Altered,
    /// A ticket for tomorrow's show.
    OtherNight,
    /// A code the scanner read only part of.
    CutShort,
    /// One ticket shown at two gates at the same moment.
    TwoGatesAtOnce,
    /// A VIP ticket at the main door.
    VipAtMain,
    /// A VIP ticket at the VIP door.
    Vip,
    /// Someone inside, scanned out at the exit gate.
    SteppingOut,
    /// Someone who stepped out, back in.
    BackIn,
}

impl Kind {
    /// What the table calls it.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Entry => "tickets bought online",
            Kind::PhoneScreen => "QR images read by the decoder",
            Kind::Screenshot => "screenshots of used tickets",
            Kind::Refunded => "refunded tickets",
            Kind::Forged => "forged codes",
            Kind::Altered => "altered codes",
            Kind::OtherNight => "tickets for tomorrow",
            Kind::CutShort => "codes read only in part",
            Kind::TwoGatesAtOnce => "same ticket, two gates at once",
            Kind::VipAtMain => "VIP tickets at the main door",
            Kind::Vip => "VIP tickets at the VIP door",
            Kind::SteppingOut => "stepping out (exit gate)",
            Kind::BackIn => "back in after stepping out",
        }
    }
}

/// What the gate must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// ACCEPT.
    Accept,
    /// REJECT with this reason code.
    Reject(&'static str),
    /// REJECT as `other_entrance`, naming this entrance.
    SentTo(&'static str),
}

/// One person at one gate.
#[derive(Debug, Clone)]
pub struct Person {
    /// Who they are.
    pub kind: Kind,
    /// What their code holds.
    pub code: String,
    /// The answer they must get.
    pub expect: Expect,
}

impl Person {
    /// Someone the gate must let in.
    pub fn entering(kind: Kind, code: &str) -> Self {
        Self { kind, code: code.to_owned(), expect: Expect::Accept }
    }

    /// Someone the gate must turn away for `reason`.
    pub fn refused(kind: Kind, code: &str, reason: &'static str) -> Self {
        Self { kind, code: code.to_owned(), expect: Expect::Reject(reason) }
    }
}

/// One answer a gate gave.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Which gate (index).
    pub gate: usize,
    /// Who asked.
    pub kind: Kind,
    /// The gate's decision line.
    pub line: Value,
    /// Whether it is what the person had to get.
    pub as_expected: bool,
    /// From showing the code to the answer.
    pub waited: Duration,
}

impl Answer {
    /// The scan id the gate recorded.
    pub fn scan_id(&self) -> Option<&str> {
        self.line["scan_id"].as_str()
    }

    /// Accepted?
    pub fn accepted(&self) -> bool {
        self.line["decision"] == "accept"
    }

    /// The reason code of a rejection.
    pub fn reason(&self) -> Option<&str> {
        self.line["reason"].as_str()
    }

    /// Decided without the hub.
    pub fn offline(&self) -> bool {
        self.line["offline"] == true
    }
}

/// A gate with its running daemon.
pub struct Gate {
    /// Gate id.
    pub id: String,
    /// `mqtt` or `quic`.
    pub transport: &'static str,
    /// The running `gate-agent`.
    pub daemon: Daemon,
}

impl Gate {
    /// Shows one code and reads the answer.
    fn ask(&mut self, code: &str) -> anyhow::Result<Value> {
        self.daemon.send_line(code);
        self.next_answer()
    }

    fn next_answer(&mut self) -> anyhow::Result<Value> {
        let line = self
            .daemon
            .try_wait_for(ANSWER_WITHIN, |l| l.contains("\"decision\""))
            .ok_or_else(|| anyhow::anyhow!("gate {} gave no answer within {ANSWER_WITHIN:?}", self.id))?;
        Ok(serde_json::from_str(&line)?)
    }

    /// Waits for the gate's link to the hub to go `online` or not; false if it did not within `within`.
    pub fn wait_link(&mut self, online: bool, within: Duration) -> bool {
        let wanted = format!("\"online\":{online}");
        self.daemon.try_wait_for(within, |l| l.contains("\"event\":\"hub_link\"") && l.contains(&wanted)).is_some()
    }
}

/// Every gate walks its own queue, all at once, one person at a time each.
pub fn walk(gates: &mut [Gate], queues: Vec<Vec<Person>>, bar: &ProgressBar) -> anyhow::Result<Vec<Answer>> {
    std::thread::scope(|scope| {
        let walkers: Vec<_> = gates
            .iter_mut()
            .zip(queues)
            .enumerate()
            .map(|(index, (gate, queue))| {
                scope.spawn(move || {
                    let mut answers = Vec::with_capacity(queue.len());
                    for person in queue {
                        let shown = Instant::now();
                        let line = gate.ask(&person.code)?;
                        let waited = shown.elapsed();
                        let as_expected = matches(&line, person.expect);
                        answers.push(Answer { gate: index, kind: person.kind, line, as_expected, waited });
                        bar.inc(1);
                    }
                    anyhow::Ok(answers)
                })
            })
            .collect();
        let mut all = Vec::new();
        for walker in walkers {
            all.extend(walker.join().map_err(|_| anyhow::anyhow!("a gate's queue panicked"))??);
        }
        Ok(all)
    })
}

/// Each code is shown at gates `a` and `b` at the same moment. With the hub
/// up exactly one lets it in and the other says `already_redeemed`; without it
/// both let it in (`alone`), and the hub later flags the pair as a conflict.
pub fn at_two_gates(
    gates: &mut [Gate],
    pairs: &[(String, usize, usize)],
    alone: bool,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<Answer>> {
    let mut all = Vec::new();
    for (code, a, b) in pairs {
        let shown = Instant::now();
        gates[*a].daemon.send_line(code);
        gates[*b].daemon.send_line(code);
        let first = gates[*a].next_answer()?;
        let waited_a = shown.elapsed();
        let lines = [first, gates[*b].next_answer()?];
        let waited = [waited_a, shown.elapsed()];
        let accepted = lines.iter().filter(|l| l["decision"] == "accept").count();
        let as_expected = if alone {
            accepted == 2 && lines.iter().all(|l| l["offline"] == true)
        } else {
            accepted == 1 && lines.iter().any(|l| l["reason"] == "already_redeemed")
        };
        for ((gate, line), waited) in [*a, *b].into_iter().zip(lines).zip(waited) {
            all.push(Answer { gate, kind: Kind::TwoGatesAtOnce, line, as_expected, waited });
        }
        bar.inc(2);
    }
    Ok(all)
}

fn matches(line: &Value, expect: Expect) -> bool {
    match expect {
        Expect::Accept => line["decision"] == "accept",
        Expect::Reject(reason) => line["decision"] == "reject" && line["reason"] == reason,
        Expect::SentTo(entrance) => {
            line["decision"] == "reject"
                && line["reason"] == "other_entrance"
                && line["go_to"] == serde_json::json!([entrance])
        }
    }
}

/// Spreads `people` over `gates` queues, one after another.
pub fn round_robin(people: impl IntoIterator<Item = Person>, gates: usize) -> Vec<Vec<Person>> {
    let mut queues = vec![Vec::new(); gates];
    for (i, person) in people.into_iter().enumerate() {
        queues[i % gates].push(person);
    }
    queues
}

/// Mixes `extra` into `queues`, evenly spaced, so they arrive among the crowd.
pub fn mix_in(queues: &mut [Vec<Person>], extra: Vec<Person>) {
    let gates = queues.len();
    for (i, person) in extra.into_iter().enumerate() {
        let queue = &mut queues[i % gates];
        let at = (i / gates * 37 + 11) % (queue.len() + 1);
        queue.insert(at, person);
    }
}

/// A code for tonight's show signed by someone else's key.
pub fn forged(event_id: u64, ticket_id: u64) -> String {
    let forger = TicketSigner::from_secret_bytes(&[0x66; 32]);
    forger.mint(&TicketClaims {
        event_id,
        ticket_id,
        ticket_type_id: 1,
        flags: TicketFlags::default(),
        validity: Validity::default(),
        seat: None,
    })
}

/// A real code with one character of its signed part changed.
pub fn altered(code: &str) -> String {
    let mut chars: Vec<char> = code.chars().collect();
    if let Some(c) = chars.get_mut(20) {
        *c = if *c == 'A' { 'B' } else { 'A' };
    }
    chars.into_iter().collect()
}

/// Answers tallied for the table.
#[derive(Debug, Default)]
pub struct Tally {
    /// Let in.
    pub accepted: usize,
    /// Let in without the hub.
    pub accepted_offline: usize,
    /// Turned away, by reason code.
    pub rejected: BTreeMap<String, usize>,
    /// Answers per gate: (accepted, rejected, offline).
    pub per_gate: BTreeMap<usize, (usize, usize, usize)>,
    /// Answer times per gate, with the hub and without it.
    pub waits: BTreeMap<(usize, bool), Vec<Duration>>,
    /// Answers per kind of person: (people, as expected).
    pub per_kind: BTreeMap<Kind, (usize, usize)>,
    /// Answers that were not what the person had to get.
    pub unexpected: Vec<Answer>,
}

impl Tally {
    /// Counts `answers`.
    pub fn of(answers: &[Answer]) -> Self {
        let mut tally = Self::default();
        for answer in answers {
            let gate = tally.per_gate.entry(answer.gate).or_default();
            if answer.accepted() {
                tally.accepted += 1;
                tally.accepted_offline += usize::from(answer.offline());
                gate.0 += 1;
            } else {
                *tally.rejected.entry(answer.reason().unwrap_or("?").to_owned()).or_default() += 1;
                gate.1 += 1;
            }
            gate.2 += usize::from(answer.offline());
            tally.waits.entry((answer.gate, answer.offline())).or_default().push(answer.waited);
            let kind = tally.per_kind.entry(answer.kind).or_default();
            kind.0 += 1;
            kind.1 += usize::from(answer.as_expected);
            if !answer.as_expected {
                tally.unexpected.push(answer.clone());
            }
        }
        for waits in tally.waits.values_mut() {
            waits.sort_unstable();
        }
        tally
    }

    /// The `q` quantile (0 to 1) of gate `gate`'s answer times, in milliseconds.
    pub fn wait_ms(&self, gate: usize, alone: bool, q: f64) -> Option<f64> {
        let waits = self.waits.get(&(gate, alone)).filter(|w| !w.is_empty())?;
        let at = ((waits.len() - 1) as f64 * q).round() as usize;
        Some(waits[at].as_secs_f64() * 1e3)
    }
}
