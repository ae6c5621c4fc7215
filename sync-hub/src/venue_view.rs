//! The venue as the operator sees it: people inside per area against its
//! capacity, and entries per minute per entrance. Pure — the status keeps the
//! raw figures (inside per list, entries per gate and minute) and the newest
//! manifest's doors; this turns them into what the dashboard draws.
//!
//! A ticket is inside on the list it last entered on (the arbiter counts each
//! ticket once), so an area's figure is the sum over the lists that lead into
//! it. A gate's entrance is the one the cloud assigned it; a gate without one
//! counts at its list's entrance when the list names exactly one, else under
//! "unassigned". A refusal names the entrances the ticket was sent to, as the
//! gate's display did.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use schema::Reason;
use schema::entry::{Route, entrances_for};
use schema::manifest::ManifestDoors;
use schema::sync::ScanReport;
use serde::Serialize;

/// How far back the entries plot reaches.
pub const PLOT_MINUTES: u64 = 180;

/// One area, or the people on lists that lead into none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AreaView {
    /// The area's id; `None` for lists without an area.
    pub area_id: Option<u32>,
    /// Its name.
    pub name: String,
    /// People inside now.
    pub inside: u64,
    /// How many it may hold, if limited.
    pub capacity: Option<u32>,
    /// At or over capacity.
    pub full: bool,
}

/// Entries per minute at one entrance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntranceSeries {
    /// The entrance's name ("unassigned" for gates of no known entrance).
    pub entrance: String,
    /// `(minute, entries)`, the minute as Unix seconds / 60, oldest first;
    /// minutes without entries are left out.
    pub per_minute: Vec<(u64, u64)>,
}

/// Name of the row for lists that lead into no area.
pub const NO_AREA: &str = "no area";
/// Name of the series of gates with no known entrance.
pub const UNASSIGNED: &str = "unassigned";

/// People inside per area. Every area of the layout is shown (empty ones
/// too); lists the manifest does not know, or without an area, add up under
/// [`NO_AREA`], shown only when someone is there.
pub fn areas(doors: Option<&ManifestDoors>, inside_per_list: &HashMap<u32, u64>) -> Vec<AreaView> {
    let area_of: HashMap<u32, u32> =
        doors.map(|d| d.lists.iter().filter_map(|l| Some((l.id, l.doors.area_id?))).collect()).unwrap_or_default();
    let mut per_area: BTreeMap<Option<u32>, u64> = BTreeMap::new();
    for (list, n) in inside_per_list {
        *per_area.entry(area_of.get(list).copied()).or_default() += n;
    }
    let mut views: Vec<AreaView> = doors
        .map(|d| d.layout.areas.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|area| {
            let inside = per_area.remove(&Some(area.id)).unwrap_or(0);
            AreaView {
                area_id: Some(area.id),
                name: area.name.clone(),
                inside,
                capacity: area.capacity,
                full: area.capacity.is_some_and(|c| inside >= u64::from(c)),
            }
        })
        .collect();
    // Lists naming an area the layout lacks count with the lists of no area.
    let elsewhere: u64 = per_area.values().sum();
    if elsewhere > 0 || views.is_empty() {
        views.push(AreaView { area_id: None, name: NO_AREA.into(), inside: elsewhere, capacity: None, full: false });
    }
    views
}

/// The entrance a gate's entries count at: its assignment, else its list's
/// only entrance, else [`UNASSIGNED`].
pub fn entrance_of(doors: Option<&ManifestDoors>, gate: &str, list_id: Option<u32>) -> String {
    let Some(doors) = doors else { return UNASSIGNED.into() };
    let assigned = doors.layout.gate(gate).and_then(|g| g.entrance_id);
    let by_list = || {
        let list = doors.lists.iter().find(|l| Some(l.id) == list_id)?;
        match list.doors.entrance_ids.as_slice() {
            [only] => Some(*only),
            _ => None,
        }
    };
    assigned
        .or_else(by_list)
        .and_then(|id| doors.layout.entrance(id))
        .map_or_else(|| UNASSIGNED.into(), |e| e.name.clone())
}

/// Entries per minute per entrance, from entries per gate (with the list the
/// gate last admitted on) and minute.
pub fn entrances(
    doors: Option<&ManifestDoors>,
    per_gate: &BTreeMap<String, GateEntries>,
    now_minute: u64,
) -> Vec<EntranceSeries> {
    let since = now_minute.saturating_sub(PLOT_MINUTES);
    let mut per_entrance: BTreeMap<String, BTreeMap<u64, u64>> = BTreeMap::new();
    if let Some(doors) = doors {
        for entrance in &doors.layout.entrances {
            per_entrance.entry(entrance.name.clone()).or_default();
        }
    }
    for (gate, entries) in per_gate {
        let series = per_entrance.entry(entrance_of(doors, gate, entries.list_id)).or_default();
        for (&minute, &n) in entries.per_minute.range(since..) {
            *series.entry(minute).or_default() += n;
        }
    }
    per_entrance
        .into_iter()
        .filter(|(name, minutes)| name != UNASSIGNED || !minutes.is_empty())
        .map(|(entrance, minutes)| EntranceSeries { entrance, per_minute: minutes.into_iter().collect() })
        .collect()
}

/// A refused scan, as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusalView {
    /// The gate's wall clock, Unix ms.
    pub at_ms: u64,
    /// The gate.
    pub gate: String,
    /// Its entrance.
    pub entrance: String,
    /// The reason code.
    pub reason: String,
    /// The reason in door staff's words.
    pub words: String,
    /// The ticket, when its signature verified.
    pub ticket_id: Option<u64>,
    /// Its type's name, when the manifest knows it.
    pub ticket_type: Option<String>,
    /// For `other_entrance`: where the person was sent.
    pub go_to: Vec<String>,
}

/// Describes a rejected scan from `gate`.
pub fn refusal(doors: Option<&ManifestDoors>, gate: &str, report: &ScanReport) -> RefusalView {
    let type_name = |doors: &ManifestDoors| {
        let id = report.ticket_type?;
        doors.ticket_types.iter().find(|t| t.id == id && Some(t.event_id) == report.event_id).map(|t| t.name.clone())
    };
    let go_to = match (doors, report.reason, report.event_id, report.ticket_type) {
        (Some(doors), Some(Reason::OtherEntrance), Some(event_id), Some(ticket_type)) => {
            sent_to(doors, gate, report.list_id, event_id, ticket_type)
        }
        _ => Vec::new(),
    };
    RefusalView {
        at_ms: report.wall_ms,
        gate: gate.to_owned(),
        entrance: entrance_of(doors, gate, Some(report.list_id)),
        reason: report.reason.map_or("unknown", Reason::code).to_owned(),
        words: report.reason.map_or("Refused", Reason::words).to_owned(),
        ticket_id: report.ticket_id,
        ticket_type: doors.and_then(type_name),
        go_to,
    }
}

/// The entrances a ticket refused at `gate` (working `list_id`) was sent to,
/// by the rule the gate's display follows: the named entrances of the other
/// lists that admit it, never the gate's own; none when one admits it at
/// every entrance.
pub fn sent_to(doors: &ManifestDoors, gate: &str, list_id: u32, event_id: u64, ticket_type: u32) -> Vec<String> {
    let assigned = doors.layout.gate(gate).and_then(|g| g.entrance_id);
    let here: BTreeSet<u32> = match assigned {
        Some(entrance) => BTreeSet::from([entrance]),
        None => doors.lists.iter().filter(|l| l.id == list_id).flat_map(|l| l.doors.entrance_ids.clone()).collect(),
    };
    let served = |l: &schema::manifest::ListRecord| {
        l.id == list_id
            || assigned.is_some_and(|a| l.doors.entrance_ids.is_empty() || l.doors.entrance_ids.contains(&a))
    };
    let routes: Vec<Route> = doors
        .lists
        .iter()
        .filter(|l| !served(l))
        .map(|l| Route {
            event_id: l.event_id,
            ticket_types: l.ticket_types.as_ref().map(|t| t.iter().copied().collect()),
            entrances: l
                .doors
                .entrance_ids
                .iter()
                .filter(|id| !here.contains(id))
                .filter_map(|id| doors.layout.entrance(*id).map(|e| e.name.clone()))
                .collect(),
        })
        .collect();
    entrances_for(&routes, event_id, ticket_type)
}

/// One gate's accepted entries, per minute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GateEntries {
    /// The list of its latest entry.
    pub list_id: Option<u32>,
    /// Minute (Unix seconds / 60) → entries.
    pub per_minute: BTreeMap<u64, u64>,
}

impl GateEntries {
    /// One entry at `minute` on `list_id`; minutes older than the plot are dropped.
    pub fn add(&mut self, minute: u64, list_id: u32, now_minute: u64) {
        self.list_id = Some(list_id);
        *self.per_minute.entry(minute).or_default() += 1;
        let keep = self.per_minute.split_off(&now_minute.saturating_sub(PLOT_MINUTES));
        self.per_minute = keep;
    }
}

#[cfg(test)]
mod tests {
    use schema::manifest::{AreaRecord, EntranceRecord, GateRecord, ListDoors, ListRecord, VenueLayout};

    use super::*;

    fn list(id: u32, area_id: Option<u32>, entrance_ids: Vec<u32>) -> ListRecord {
        ListRecord {
            id,
            name: format!("list {id}"),
            event_id: 1,
            ticket_types: None,
            allow_multiple_entries: false,
            allow_entry_after_exit: true,
            unknown_tickets: schema::entry::UnknownTicketPolicy::Reject,
            doors: ListDoors { area_id, entrance_ids, ..ListDoors::default() },
        }
    }

    fn doors() -> ManifestDoors {
        ManifestDoors {
            lists: vec![list(1, Some(10), vec![1]), list(2, Some(10), vec![2]), list(3, Some(20), vec![1, 2])],
            layout: VenueLayout {
                entrances: vec![
                    EntranceRecord { id: 1, name: "Main".into() },
                    EntranceRecord { id: 2, name: "VIP".into() },
                ],
                areas: vec![
                    AreaRecord { id: 10, name: "Floor".into(), capacity: Some(3) },
                    AreaRecord { id: 20, name: "Balcony".into(), capacity: None },
                ],
                gates: vec![GateRecord { gate_id: "side".into(), entrance_id: Some(2), revoked: false }],
            },
            ..ManifestDoors::default()
        }
    }

    #[test]
    fn areas_add_up_their_lists_and_say_when_full() {
        let inside = HashMap::from([(1, 2), (2, 1), (3, 4), (99, 5)]);
        let views = areas(Some(&doors()), &inside);
        let figures: Vec<_> = views.iter().map(|a| (a.name.as_str(), a.inside, a.full)).collect();
        assert_eq!(figures, [("Floor", 3, true), ("Balcony", 4, false), (NO_AREA, 5, false)]);
        // Nobody on unknown lists: no such row; an empty area is still shown.
        let views = areas(Some(&doors()), &HashMap::from([(3, 1)]));
        let figures: Vec<_> = views.iter().map(|a| (a.name.as_str(), a.inside)).collect();
        assert_eq!(figures, [("Floor", 0), ("Balcony", 1)]);
        // No manifest yet: one row with everyone.
        assert_eq!(areas(None, &HashMap::from([(1, 7)]))[0].inside, 7);
    }

    #[test]
    fn a_gate_counts_at_its_assigned_entrance_or_its_lists_only_one() {
        let d = doors();
        assert_eq!(entrance_of(Some(&d), "side", Some(1)), "VIP", "the assignment wins");
        assert_eq!(entrance_of(Some(&d), "main-1", Some(1)), "Main", "the list's only entrance");
        assert_eq!(entrance_of(Some(&d), "main-1", Some(3)), UNASSIGNED, "a list at two entrances");
        assert_eq!(entrance_of(None, "main-1", Some(1)), UNASSIGNED);
    }

    #[test]
    fn a_refusal_names_where_the_ticket_was_sent() {
        let mut d = doors();
        d.lists[1].ticket_types = Some(vec![7]); // VIP list: type 7 only
        d.lists[0].ticket_types = Some(vec![1]);
        d.lists[2].ticket_types = Some(vec![1]);
        d.ticket_types = vec![schema::manifest::TicketTypeRecord { id: 7, event_id: 1, name: "VIP pass".into() }];
        let report = ScanReport {
            seq: 1,
            hlc: schema::hlc::HlcTimestamp(1),
            wall_ms: 5,
            ticket_id: Some(42),
            event_id: Some(1),
            ticket_type: Some(7),
            list_id: 1,
            direction: schema::entry::Direction::Entry,
            decision: schema::Decision::Reject,
            reason: Some(Reason::OtherEntrance),
            rule: schema::sync::ReentryRule::default(),
            offline: false,
            annulled: false,
            claim_id: None,
            not_in_replica: false,
        };
        let view = refusal(Some(&d), "main-1", &report);
        assert_eq!(view.go_to, ["VIP"]);
        assert_eq!((view.entrance.as_str(), view.ticket_type.as_deref()), ("Main", Some("VIP pass")));
        assert_eq!(view.words, Reason::OtherEntrance.words());
        // The gate assigned to VIP is never told to send people to VIP.
        assert!(sent_to(&d, "side", 1, 1, 7).is_empty());
        // A type some list admits everywhere names no door.
        d.lists.push(ListRecord { ticket_types: None, ..list(4, None, vec![]) });
        assert!(sent_to(&d, "main-1", 1, 1, 7).is_empty());
        // Other reasons, or no manifest: nowhere to send.
        let closed = ScanReport { reason: Some(Reason::ListClosed), ..report.clone() };
        assert!(refusal(Some(&d), "main-1", &closed).go_to.is_empty());
        assert_eq!(refusal(None, "main-1", &report).entrance, UNASSIGNED);
    }

    #[test]
    fn entries_per_minute_add_up_per_entrance_over_the_plot_window() {
        let now = 1_000_000;
        let mut main = GateEntries::default();
        main.add(now - 1, 1, now);
        main.add(now - 1, 1, now);
        main.add(now, 1, now);
        let mut side = GateEntries::default();
        side.add(now - PLOT_MINUTES - 5, 1, now - PLOT_MINUTES);
        side.add(now, 1, now);
        let per_gate = BTreeMap::from([("main-1".to_owned(), main), ("side".to_owned(), side)]);
        let series = entrances(Some(&doors()), &per_gate, now);
        let got: Vec<_> = series.iter().map(|s| (s.entrance.as_str(), s.per_minute.clone())).collect();
        assert_eq!(got, [("Main", vec![(now - 1, 2), (now, 1)]), ("VIP", vec![(now, 1)])]);
    }
}
