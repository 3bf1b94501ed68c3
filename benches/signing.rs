//! Costs of the pure per-delivery work: signing, verifying, offset bookkeeping and the
//! batching decision. Each runs once or more per delivery, so each must stay far below the
//! HTTP exchange it precedes (tens of microseconds on loopback).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hookrelay::batch::policy::{BatchPolicy, decide};
use hookrelay::ids::Secret;
use hookrelay::offsets::tracker::PartitionOffsets;
use hookrelay::sign::{SignedHeaders, SigningKey, generate_secret, signature_header, verify};

/// A license event body of the size the design's example has (about 600 bytes).
fn body() -> Vec<u8> {
    let mut body = br#"{"id":"evt_a1b2c3d4e5f6","type":"license.activated","created":"2026-03-15T14:30:00Z","data":{"licenseKey":"TO-****-****-****-F6A8","plan":"professional","domain":"app.customer.com","activationsUsed":3,"activationLimit":10,"expiresAt":"2027-03-15T00:00:00Z","features":["analytics","api-access","custom-domains"]}}"#.to_vec();
    body.resize(600, b' ');
    body
}

fn signing(c: &mut Criterion) {
    let body = body();
    let new = generate_secret();
    let old = generate_secret();
    let keys = [
        SigningKey::from_secret(&new).expect("generated secret"),
        SigningKey::from_secret(&old).expect("generated secret"),
    ];
    let ts = 1_773_585_000;

    c.bench_function("signature_header/600B/1 key", |b| {
        b.iter(|| {
            signature_header(
                black_box("evt_a1b2c3d4e5f6"),
                ts,
                black_box(&body),
                &keys[..1],
            )
        })
    });
    c.bench_function("signature_header/600B/2 keys", |b| {
        b.iter(|| signature_header(black_box("evt_a1b2c3d4e5f6"), ts, black_box(&body), &keys))
    });
    // What the dispatcher does per attempt: parse secrets, sign both schemes.
    let secrets: Vec<Secret> = vec![new.clone(), old];
    c.bench_function("SignedHeaders::new/600B/2 secrets", |b| {
        b.iter(|| {
            SignedHeaders::new(
                black_box("evt_a1b2c3d4e5f6"),
                ts,
                black_box(&body),
                &secrets,
            )
        })
    });

    let header = signature_header("evt_a1b2c3d4e5f6", ts, &body, &keys);
    let ts_text = ts.to_string();
    c.bench_function("verify/600B/2 signatures", |b| {
        b.iter(|| {
            verify(
                &new,
                "evt_a1b2c3d4e5f6",
                &ts_text,
                black_box(&header),
                black_box(&body),
                ts,
            )
        })
    });
}

fn offsets(c: &mut Criterion) {
    // 1,000 offsets with two deliveries each, settled in an order that keeps many in flight.
    c.bench_function("offsets/track+settle/1000x2", |b| {
        b.iter(|| {
            let mut t = PartitionOffsets::new();
            for o in 0..1_000 {
                t.track(o, 2).expect("increasing");
            }
            for o in (0..1_000).rev() {
                t.settle(o).expect("in flight");
            }
            for o in 0..1_000 {
                t.settle(o).expect("in flight");
            }
            black_box(t.committable())
        })
    });
}

fn batching(c: &mut Criterion) {
    let policy = BatchPolicy::default();
    let now = Instant::now();
    let backlog: Vec<(usize, Instant)> = (0..1_000).map(|_| (600, now)).collect();
    let few: Vec<(usize, Instant)> = (0..5)
        .map(|i| (600, now + Duration::from_micros(i)))
        .collect();
    c.bench_function("decide/backlog of 1000", |b| {
        b.iter(|| decide(&policy, black_box(&backlog), now))
    });
    c.bench_function("decide/5 waiting, lingering", |b| {
        b.iter(|| decide(&policy, black_box(&few), now))
    });
}

criterion_group!(benches, signing, offsets, batching);
criterion_main!(benches);
