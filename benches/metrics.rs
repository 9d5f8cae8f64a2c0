//! Cost of recording metrics on the hot path: a pre-resolved handle (what the proxy uses) against
//! a `with_label_values` lookup per event (what it avoids), for a request counter and for the
//! per-value record of a fetch. `cargo test --benches` runs each once; `cargo bench --bench
//! metrics` measures.
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use picklebridge::metrics::{Command, Direction, Metrics, PickleProtocol, Runtime, Writer};
use prometheus::{IntCounterVec, Opts, Registry};

fn request_counter(c: &mut Criterion) {
    let registry = Registry::new();
    let metrics = Metrics::register(&registry).expect("register");
    let listener = metrics.listener("py3", Runtime::Py3);
    let requests = listener.requests("sessions");
    let mut group = c.benchmark_group("request_counter");
    group.bench_function("handle", |b| {
        b.iter(|| requests.inc(black_box(Command::Get)))
    });
    // The same family shape looked up by label strings on every event.
    let vec = IntCounterVec::new(
        Opts::new("lookup_total", "lookup"),
        &["listener", "route", "command"],
    )
    .expect("vec");
    group.bench_function("with_label_values", |b| {
        b.iter(|| {
            vec.with_label_values(&[
                black_box("py3"),
                black_box("sessions"),
                Command::Get.as_str(),
            ])
            .inc()
        })
    });
    group.finish();
}

fn value_record(c: &mut Criterion) {
    let registry = Registry::new();
    let metrics = Metrics::register(&registry).expect("register");
    let route = metrics.route("sessions", "main", "transcode");
    c.bench_function("route_value_and_transcode", |b| {
        b.iter(|| {
            route.value_seen(Direction::Fetch, PickleProtocol::P4, Writer::Py3);
            route.transcoded(
                Direction::Fetch,
                picklebridge::metrics::TranscodeOutcome::Rewritten,
                black_box(512),
                black_box(480),
                Duration::from_nanos(900),
            );
        })
    });
}

criterion_group!(benches, request_counter, value_record);
criterion_main!(benches);
