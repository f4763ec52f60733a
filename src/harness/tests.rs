//! The relay core's behaviour across shards, driven by the harness: fan-out, one upstream
//! per track, late join, linger, slow-viewer skip-ahead, publisher loss and a full mesh.

use super::peer::ReceivedGroup;
use super::*;
use crate::relay::{IDLE_GRACE, TEARDOWN_DELAY};
use crate::wire::error_code::stream as code;
use crate::wire::SubscribeResponse;

const BROADCAST: &str = "live/a";
const TRACK: &str = "video";

/// A world with one relay of `shards` shards and roomy lanes; returns it and the shard that
/// owns [`BROADCAST`].
fn world(shards: usize, config: RelayConfig) -> (World, usize) {
    let mut world = World::new();
    world.add_relay(shards, config, 1024);
    let owner = world.relays[0].shards[0].owner_of(BROADCAST);
    (world, owner)
}

fn complete(group: &ReceivedGroup) -> bool {
    group.end == Some(Ok(()))
}

fn payloads(group: &ReceivedGroup) -> Vec<&[u8]> {
    group.frames.iter().map(|(_, p)| p.as_ref()).collect()
}

#[test]
fn a_group_fans_out_to_viewers_on_every_shard_through_one_upstream_subscription() {
    let (mut world, owner) = world(3, relay_config());
    // The publisher sits on a shard that does not own the broadcast.
    let (publisher, _p) = world.publisher(0, (owner + 1) % 3);
    publisher.announce(BROADCAST);
    world.settle();
    let viewers: Vec<_> = (0..6).map(|i| world.viewer_on(0, i % 3).0).collect();
    let subscriptions: Vec<_> = viewers
        .iter()
        .map(|v| v.subscribe(BROADCAST, TRACK, 1000))
        .collect();
    world.settle();
    assert_eq!(
        publisher.subscribes(BROADCAST, TRACK),
        1,
        "one upstream per track"
    );

    publisher.group(BROADCAST, TRACK, 0, &[(0, b"key"), (33, b"delta")], true);
    world.settle();
    for (viewer, &sub) in viewers.iter().zip(&subscriptions) {
        let groups = viewer.groups(sub);
        let group = &groups[&0];
        assert!(complete(group), "{group:?}");
        assert_eq!(payloads(group), [&b"key"[..], b"delta"]);
        assert_eq!(group.frames[1].0, 33, "timestamps survive the hops");
        let (responses, reset) = viewer.responses(sub);
        assert_eq!(
            responses.first(),
            Some(&SubscribeResponse::Start { group: 0 })
        );
        assert_eq!(reset, None);
    }
    // Every replica shard got the group once; the publisher still sees one subscription.
    assert_eq!(publisher.open_subscriptions(), 1);
}

#[test]
fn viewers_leaving_and_returning_within_the_idle_grace_reuse_the_upstream() {
    let (mut world, owner) = world(2, relay_config());
    let (publisher, _p) = world.publisher(0, owner);
    publisher.announce(BROADCAST);
    world.settle();
    let (viewer, _v) = world.viewer_on(0, 1 - owner);
    let first = viewer.subscribe(BROADCAST, TRACK, 1000);
    world.settle();
    viewer.unsubscribe(first);
    world.advance(IDLE_GRACE / 2);
    let again = viewer.subscribe(BROADCAST, TRACK, 1000);
    world.settle();
    assert_eq!(publisher.subscribes(BROADCAST, TRACK), 1);
    publisher.group(BROADCAST, TRACK, 0, &[(0, b"x")], true);
    world.settle();
    assert!(complete(&viewer.groups(again)[&0]));

    // Once nobody has used the track for the grace period, the upstream goes.
    viewer.unsubscribe(again);
    world.advance(IDLE_GRACE + Duration::from_millis(1));
    assert_eq!(publisher.open_subscriptions(), 0);
    assert_eq!(world.relays[0].shards[owner].stats().tracks, 0);
    assert_eq!(world.relays[0].shards[1 - owner].stats().tracks, 0);
}

#[test]
fn a_late_viewer_starts_at_the_latest_cached_group_then_follows_live() {
    let (mut world, owner) = world(2, relay_config());
    let (publisher, _p) = world.publisher(0, owner);
    publisher.announce(BROADCAST);
    world.settle();
    let (early, _e) = world.viewer_on(0, owner);
    let early_sub = early.subscribe(BROADCAST, TRACK, 10_000);
    world.settle();
    for seq in 0..4 {
        publisher.group(BROADCAST, TRACK, seq, &[(seq * 1000, b"g")], true);
        world.advance(Duration::from_millis(100));
    }
    assert_eq!(early.groups(early_sub).len(), 4);

    // A viewer on the other shard joins late: it is served from that shard's replica.
    let (late, _l) = world.viewer_on(0, 1 - owner);
    let late_sub = late.subscribe(BROADCAST, TRACK, 10_000);
    world.settle();
    let (responses, _) = late.responses(late_sub);
    assert_eq!(
        responses.first(),
        Some(&SubscribeResponse::Start { group: 3 })
    );
    assert_eq!(
        late.groups(late_sub).keys().copied().collect::<Vec<_>>(),
        [3]
    );
    publisher.group(BROADCAST, TRACK, 4, &[(4000, b"g")], true);
    world.settle();
    let groups = late.groups(late_sub);
    assert_eq!(groups.keys().copied().collect::<Vec<_>>(), [3, 4]);
    assert!(groups.values().all(complete));
    assert_eq!(publisher.subscribes(BROADCAST, TRACK), 1);
}

#[test]
fn a_lost_publisher_lingers_then_its_broadcast_ends_unless_it_returns() {
    let config = RelayConfig {
        linger: Duration::from_secs(5),
        ..relay_config()
    };
    let (mut world, owner) = world(2, config);
    let (publisher, p) = world.publisher(0, 1 - owner);
    publisher.announce(BROADCAST);
    world.settle();
    let (viewer, _v) = world.viewer_on(0, owner);
    viewer.watch_announcements();
    let sub = viewer.subscribe(BROADCAST, TRACK, 10_000);
    world.settle();
    assert!(viewer.active().contains(BROADCAST));

    world.disconnect(&p);
    world.advance(Duration::from_secs(4));
    assert!(
        viewer.active().contains(BROADCAST),
        "still announced while lingering"
    );

    // It returns within the linger: the same subscription carries the new publisher's groups.
    let (back, _b) = world.publisher(0, owner);
    back.announce(BROADCAST);
    world.settle();
    assert_eq!(back.subscribes(BROADCAST, TRACK), 1);
    back.group(BROADCAST, TRACK, 7, &[(7000, b"back")], true);
    world.advance(Duration::from_secs(10));
    assert!(complete(&viewer.groups(sub)[&7]));
    assert!(
        viewer.active().contains(BROADCAST),
        "the linger was cancelled"
    );
    assert_eq!(viewer.responses(sub).1, None);
}

#[test]
fn a_lingering_broadcast_ends_after_the_linger_and_its_open_groups_are_cancelled() {
    let config = RelayConfig {
        linger: Duration::from_secs(2),
        ..relay_config()
    };
    let (mut world, owner) = world(2, config);
    let (publisher, p) = world.publisher(0, owner);
    publisher.announce(BROADCAST);
    world.settle();
    let (viewer, _v) = world.viewer_on(0, 1 - owner);
    viewer.watch_announcements();
    let sub = viewer.subscribe(BROADCAST, TRACK, 10_000);
    world.settle();
    publisher.group(BROADCAST, TRACK, 0, &[(0, b"a")], true);
    world.settle();
    publisher.group(BROADCAST, TRACK, 1, &[(1000, b"b")], false);
    world.settle();
    assert_eq!(viewer.groups(sub)[&1].frames.len(), 1);

    world.disconnect(&p);
    world.advance(Duration::from_millis(1999));
    assert!(viewer.active().contains(BROADCAST));
    assert_eq!(
        viewer.groups(sub)[&1].end,
        None,
        "held open during the linger"
    );
    world.advance(Duration::from_millis(1));
    assert!(
        !viewer.active().contains(BROADCAST),
        "ended after the linger"
    );
    world.advance(TEARDOWN_DELAY);
    let groups = viewer.groups(sub);
    assert!(complete(&groups[&0]));
    assert_eq!(groups[&1].end, Some(Err(code::CANCEL)));
    let (responses, _) = viewer.responses(sub);
    assert_eq!(responses.last(), Some(&SubscribeResponse::End { group: 2 }));
    for shard in &world.relays[0].shards {
        assert_eq!(shard.stats().owned_broadcasts, 0);
    }
}

#[test]
fn a_clean_unannounce_without_linger_ends_at_once() {
    let config = RelayConfig {
        linger: Duration::ZERO,
        ..relay_config()
    };
    let (mut world, owner) = world(2, config);
    let (publisher, p) = world.publisher(0, owner);
    publisher.announce(BROADCAST);
    world.settle();
    let (viewer, _v) = world.viewer_on(0, 1 - owner);
    viewer.watch_announcements();
    world.settle();
    assert!(viewer.active().contains(BROADCAST));
    world.disconnect(&p);
    world.settle();
    assert!(viewer.active().is_empty());
}

#[test]
fn a_group_overtaken_on_the_way_in_still_reaches_viewers_already_past_it() {
    let (mut world, owner) = world(2, relay_config());
    let (publisher, _p) = world.publisher(0, owner);
    publisher.announce(BROADCAST);
    world.settle();
    let viewers: Vec<_> = (0..2).map(|shard| world.viewer_on(0, shard).0).collect();
    let subscriptions: Vec<_> = viewers
        .iter()
        .map(|v| v.subscribe(BROADCAST, TRACK, 10_000))
        .collect();
    world.settle();
    publisher.group(BROADCAST, TRACK, 0, &[(0, b"0")], true);
    world.settle();
    // Group 1's first packet was lost on the way in, so group 2's stream starts first and
    // every viewer is sent group 2 before group 1 exists.
    publisher.group(BROADCAST, TRACK, 2, &[(2000, b"2")], true);
    world.settle();
    publisher.group(BROADCAST, TRACK, 1, &[(1000, b"1")], true);
    world.settle();
    for (viewer, &sub) in viewers.iter().zip(&subscriptions) {
        let groups = viewer.groups(sub);
        assert_eq!(groups.keys().copied().collect::<Vec<_>>(), [0, 1, 2]);
        assert!(groups.values().all(complete), "{groups:?}");
        assert_eq!(payloads(&groups[&1]), [&b"1"[..]]);
    }
}

#[test]
fn a_group_overtaken_by_more_than_the_viewers_max_age_is_reset_old_not_lost_silently() {
    let (mut world, owner) = world(2, relay_config());
    let (publisher, _p) = world.publisher(0, owner);
    publisher.announce(BROADCAST);
    world.settle();
    let (viewer, _v) = world.viewer_on(0, 1 - owner);
    let sub = viewer.subscribe(BROADCAST, TRACK, 0);
    world.settle();
    for (seq, at) in [(0, 0), (2, 2000), (3, 3000)] {
        publisher.group(BROADCAST, TRACK, seq, &[(at, b"g")], true);
        world.settle();
    }
    // Group 1 arrives late and still open: stalled, and older than max age 0 allows (a late
    // group that arrives whole is written whole at once, which §6.7 allows).
    publisher.group(BROADCAST, TRACK, 1, &[(1000, b"g")], false);
    world.settle();
    let groups = viewer.groups(sub);
    assert_eq!(groups.keys().copied().collect::<Vec<_>>(), [0, 2, 3]);
    assert!(groups.values().all(complete), "{groups:?}");
    // Its stream was opened and reset Old before the viewer read its header.
    assert_eq!(viewer.headless_resets(), [code::OLD]);
}

#[test]
fn a_stalled_viewer_skips_old_groups_without_slowing_another() {
    let (mut world, owner) = world(2, relay_config());
    let (publisher, _p) = world.publisher(0, owner);
    publisher.announce(BROADCAST);
    world.settle();
    let (slow, _s) = world.viewer(0, 1 - owner, 1000);
    let (fast, _f) = world.viewer_on(0, 1 - owner);
    let slow_sub = slow.subscribe(BROADCAST, TRACK, 1500);
    let fast_sub = fast.subscribe(BROADCAST, TRACK, 1500);
    world.settle();
    slow.pause(true);
    let frame = vec![7u8; 4000];
    for seq in 0..6 {
        publisher.group(BROADCAST, TRACK, seq, &[(seq * 1000, &frame)], true);
        world.advance(Duration::from_millis(10));
    }
    let fast_groups = fast.groups(fast_sub);
    assert_eq!(fast_groups.len(), 6);
    assert!(fast_groups
        .values()
        .all(|g| complete(g) && g.frames[0].1.len() == 4000));

    slow.pause(false);
    world.settle();
    let groups = slow.groups(slow_sub);
    // Groups reset before the viewer read their header are known only by their code.
    let dropped = slow.headless_resets();
    assert!(!dropped.is_empty(), "old groups were reset: {groups:?}");
    assert!(dropped.iter().all(|&c| c == code::OLD), "{dropped:?}");
    assert!(groups.len() + dropped.len() <= 6);
    assert!(groups.len() < 6, "it skipped ahead: {groups:?}");
    assert!(complete(&groups[&5]), "the latest arrives whole");
    for group in groups.values() {
        // Nothing looks whole that is not: a group either completes with its frame or is reset.
        match group.end {
            Some(Ok(())) => assert_eq!(group.frames[0].1.len(), 4000),
            Some(Err(c)) => assert_eq!(c, code::OLD),
            None => panic!("group {} left hanging", group.sequence),
        }
    }
}

#[test]
fn a_full_mesh_resets_groups_for_the_lagging_shard_and_control_still_arrives() {
    let config = RelayConfig {
        data_backlog: 4,
        control_backlog: 4,
        ..relay_config()
    };
    let mut world = World::new();
    world.add_relay(2, config, 2);
    let owner = world.relays[0].shards[0].owner_of(BROADCAST);
    let replica = 1 - owner;
    let (publisher, _p) = world.publisher(0, owner);
    publisher.announce(BROADCAST);
    world.settle();
    let (viewer, _v) = world.viewer_on(0, replica);
    let sub = viewer.subscribe(BROADCAST, TRACK, 60_000);
    world.settle();
    assert_eq!(publisher.subscribes(BROADCAST, TRACK), 1);

    // The replica shard stops reading its mesh while a burst arrives.
    world.relays[0].lanes.hold(replica, true);
    publisher.group(BROADCAST, TRACK, 0, &[(0, b"a")], false);
    for i in 1..40u64 {
        publisher.frame(BROADCAST, TRACK, 0, (i, b"frame"), false);
    }
    publisher.frame(BROADCAST, TRACK, 0, (40, b"last"), true);
    world.settle();
    let drops = world.relays[0].shards[owner].mesh_drops();
    assert!(
        drops.data.frames > 0 && drops.data.groups_reset == 1,
        "{drops:?}"
    );
    world.relays[0].lanes.hold(replica, false);
    world.settle();
    let group = &viewer.groups(sub)[&0];
    assert_eq!(
        group.end,
        Some(Err(code::TOO_FAR_BEHIND)),
        "a reset, not a hole"
    );
    assert!(group.frames.len() < 41);

    // The mesh recovered: the next group arrives whole.
    publisher.group(BROADCAST, TRACK, 1, &[(100, b"b")], true);
    world.settle();
    assert!(complete(&viewer.groups(sub)[&1]));
}

#[test]
fn a_subscription_to_an_unknown_broadcast_is_refused_as_unroutable_from_any_shard() {
    let (mut world, owner) = world(2, relay_config());
    for shard in [owner, 1 - owner] {
        let (viewer, _v) = world.viewer_on(0, shard);
        let sub = viewer.subscribe(BROADCAST, TRACK, 1000);
        world.settle();
        assert_eq!(
            viewer.responses(sub).1,
            Some(code::UNROUTABLE),
            "shard {shard}"
        );
    }
}
