//! Media through the relay core, driven by the harness: frames forwarded as they arrive
//! (cut-through) across shards, a frame cut short never delivered as whole, and the cache
//! bounds (the track's byte budget on every chunk, the per-group cap stopping a publisher).

use super::*;
use crate::model::{CacheDrops, GroupState};
use crate::wire::error_code::stream as code;

const BROADCAST: &str = "live/m";
const TRACK: &str = "video";

/// A world with one relay of two shards; returns it and the shard owning [`BROADCAST`].
fn world(config: RelayConfig) -> (World, usize) {
    let mut world = World::new();
    world.add_relay(2, config, 1024);
    let owner = world.relays[0].shards[0].owner_of(BROADCAST);
    (world, owner)
}

/// `len` bytes that differ from one position to the next, so a misplaced chunk shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

fn drops(world: &World, shard: usize) -> CacheDrops {
    world.relays[0].shards[shard].cache_drops()
}

#[test]
fn a_frame_reaches_viewers_on_every_shard_before_its_last_byte_arrives() {
    let (mut world, owner) = world(relay_config());
    // The publisher is on the shard that does not own the broadcast: every chunk crosses
    // the mesh to the owner, and from there to the viewer on the publisher's shard.
    let (publisher, _p) = world.publisher(0, 1 - owner);
    publisher.announce(BROADCAST);
    world.settle();
    let (near, _n) = world.viewer_on(0, owner);
    let (far, _f) = world.viewer_on(0, 1 - owner);
    let subs = [
        (&near, near.subscribe(BROADCAST, TRACK, 10_000)),
        (&far, far.subscribe(BROADCAST, TRACK, 10_000)),
    ];
    world.settle();

    let frame = pattern(64 << 10, 7);
    publisher.group(BROADCAST, TRACK, 0, &[], false);
    publisher.frame_part(BROADCAST, TRACK, 0, (500, frame.len()), &frame[..16 << 10]);
    world.settle();
    for (viewer, sub) in subs {
        let group = &viewer.groups(sub)[&0];
        assert!(group.frames.is_empty() && group.end.is_none(), "{group:?}");
        assert_eq!(group.partial, 16 << 10, "the first chunk is through");
    }
    // Later chunks follow as they come, the frame's end completes it.
    publisher.payload(BROADCAST, TRACK, 0, &frame[16 << 10..40 << 10], false);
    world.settle();
    for (viewer, sub) in subs {
        assert_eq!(viewer.groups(sub)[&0].partial, 40 << 10);
    }
    // A late viewer on the replica shard is served the partial frame from the cache.
    let (late, _l) = world.viewer_on(0, 1 - owner);
    let late_sub = late.subscribe(BROADCAST, TRACK, 10_000);
    world.settle();
    assert_eq!(late.groups(late_sub)[&0].partial, 40 << 10);

    publisher.payload(BROADCAST, TRACK, 0, &frame[40 << 10..], true);
    world.settle();
    for (viewer, sub) in subs.into_iter().chain([(&late, late_sub)]) {
        let group = &viewer.groups(sub)[&0];
        assert_eq!(group.end, Some(Ok(())), "{group:?}");
        assert_eq!(group.frames.len(), 1);
        assert_eq!(group.frames[0].0, 500, "the timestamp survives");
        assert!(group.frames[0].1 == frame[..], "every byte, in order");
    }
    assert_eq!(publisher.subscribes(BROADCAST, TRACK), 1);
}

#[test]
fn a_frame_cut_short_by_its_publisher_resets_the_viewers_groups_and_never_arrives_whole() {
    let (mut world, owner) = world(relay_config());
    let (publisher, _p) = world.publisher(0, owner);
    publisher.announce(BROADCAST);
    world.settle();
    let (near, _n) = world.viewer_on(0, owner);
    let (far, _f) = world.viewer_on(0, 1 - owner);
    let subs = [
        (&near, near.subscribe(BROADCAST, TRACK, 10_000)),
        (&far, far.subscribe(BROADCAST, TRACK, 10_000)),
    ];
    world.settle();

    // Group 0: a whole frame, then half of a second one, then the publisher resets it.
    // Group 1: half a frame, then a clean FIN inside it.
    let frame = pattern(32 << 10, 3);
    publisher.group(BROADCAST, TRACK, 0, &[(0, b"whole")], false);
    publisher.frame_part(BROADCAST, TRACK, 0, (33, frame.len()), &frame[..16 << 10]);
    // (Settled in between, or the viewers would start at group 1, the latest.)
    world.settle();
    publisher.group(BROADCAST, TRACK, 1, &[], false);
    publisher.frame_part(BROADCAST, TRACK, 1, (66, frame.len()), &frame[..16 << 10]);
    world.settle();
    for (viewer, sub) in subs {
        let groups = viewer.groups(sub);
        assert_eq!(
            (groups[&0].partial, groups[&1].partial),
            (16 << 10, 16 << 10)
        );
    }
    const PUBLISHER_GAVE_UP: u64 = code::APPLICATION + 9;
    publisher.reset_group(BROADCAST, TRACK, 0, PUBLISHER_GAVE_UP);
    publisher.payload(BROADCAST, TRACK, 1, &[], true);
    world.settle();
    for (viewer, sub) in subs {
        let groups = viewer.groups(sub);
        assert_eq!(groups[&0].end, Some(Err(PUBLISHER_GAVE_UP)), "{groups:?}");
        assert_eq!(groups[&0].frames.len(), 1, "only the whole frame arrived");
        assert_eq!(groups[&1].end, Some(Err(code::WRONG_SIZE)), "{groups:?}");
        assert!(groups[&1].frames.is_empty());
    }
}

#[test]
fn open_groups_growing_past_the_track_budget_are_stopped_at_the_publisher_and_evicted() {
    const BUDGET: usize = 64 << 10;
    let config = RelayConfig {
        cache: CacheLimits {
            max_track_bytes: BUDGET,
            max_group_bytes: 16 << 10,
            ..CacheLimits::default()
        },
        ..relay_config()
    };
    let (mut world, owner) = world(config);
    let (publisher, _p) = world.publisher(0, owner);
    publisher.announce(BROADCAST);
    world.settle();
    let (viewer, _v) = world.viewer_on(0, 1 - owner);
    let sub = viewer.subscribe(BROADCAST, TRACK, 60_000);
    world.settle();
    let handles: Vec<_> = world.relays[0]
        .shards
        .iter()
        .map(|shard| shard.open_track(BROADCAST, TRACK, None))
        .collect();

    // Ten groups kept open, each growing by 4 KiB chunks to 12 KiB: 120 KiB written
    // against a 64 KiB budget, checked after every chunk on both shards.
    for seq in 0..10 {
        publisher.group(BROADCAST, TRACK, seq, &[], false);
        publisher.frame_part(BROADCAST, TRACK, seq, (seq * 100, 12 << 10), &[1; 4 << 10]);
        world.settle();
    }
    for _ in 0..2 {
        for seq in 0..10 {
            publisher.payload(BROADCAST, TRACK, seq, &[2; 4 << 10], false);
            world.settle();
            for handle in &handles {
                assert!(handle.track().cached_bytes() <= BUDGET);
            }
        }
    }
    // The publisher's session keeps its open groups within the budget too: it stopped the
    // oldest group streams (Evicted), so their payload never even reached the cache.
    assert!(
        drops(&world, owner).groups_evicted >= 4,
        "{:?}",
        drops(&world, owner)
    );
    for seq in 0..4 {
        assert_eq!(
            publisher.group_stops(BROADCAST, TRACK, seq),
            [code::EVICTED],
            "group {seq}"
        );
    }
    assert!(publisher.group_stops(BROADCAST, TRACK, 9).is_empty());
    // The viewer saw the oldest groups reset as Evicted, never completed.
    let groups = viewer.groups(sub);
    let evicted = groups
        .values()
        .filter(|g| g.end == Some(Err(code::EVICTED)))
        .count()
        + viewer.headless_resets().len();
    assert!(evicted >= 4, "{groups:?}");
    assert!(groups.values().all(|g| g.end != Some(Ok(()))));
    assert!(viewer.headless_resets().iter().all(|&c| c == code::EVICTED));
    // The newest group is cached and still completes.
    publisher.payload(BROADCAST, TRACK, 9, &[], true);
    world.settle();
    let newest = handles[1 - owner].track().latest().unwrap();
    assert_eq!((newest.sequence, newest.state()), (9, GroupState::Complete));
}

#[test]
fn a_group_past_the_per_group_cap_stops_the_publishers_stream_and_resets_the_viewers() {
    let config = RelayConfig {
        cache: CacheLimits {
            max_group_bytes: 16 << 10,
            ..CacheLimits::default()
        },
        ..relay_config()
    };
    let (mut world, owner) = world(config);
    let (publisher, _p) = world.publisher(0, 1 - owner);
    publisher.announce(BROADCAST);
    world.settle();
    let (viewer, _v) = world.viewer_on(0, owner);
    let sub = viewer.subscribe(BROADCAST, TRACK, 10_000);
    world.settle();

    let frame = pattern(10 << 10, 1);
    publisher.group(BROADCAST, TRACK, 0, &[(0, &frame)], false);
    world.settle();
    // The second frame declares more than the group has left: refused on its header.
    publisher.frame_part(BROADCAST, TRACK, 0, (33, 10 << 10), &frame[..1024]);
    world.settle();
    assert_eq!(
        publisher.group_stops(BROADCAST, TRACK, 0),
        [code::GROUP_TOO_LARGE]
    );
    let group = &viewer.groups(sub)[&0];
    assert_eq!(group.end, Some(Err(code::GROUP_TOO_LARGE)), "{group:?}");
    assert_eq!(
        group.frames.len(),
        1,
        "the frame within the cap arrived whole"
    );
    assert_eq!(drops(&world, 1 - owner).groups_too_large, 1);
}
