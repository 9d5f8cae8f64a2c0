//! Protocol codec throughput: parsing get / set / multi-get requests, framing VALUE replies,
//! and composing VALUE blocks for the client. `cargo test --benches` runs each once;
//! `cargo bench --bench protocol` measures.
use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use picklebridge::protocol::{
    compose_request, compose_response, parse_request, parse_response, Limits, Parsed, Request,
    Response, Value,
};

fn set_request(len: usize) -> Bytes {
    let mut v = format!("set user:profile:12345 1 3600 {len}\r\n").into_bytes();
    v.extend(std::iter::repeat(b'p').take(len));
    v.extend_from_slice(b"\r\n");
    Bytes::from(v)
}

fn multi_get(keys: usize) -> Bytes {
    let mut v = b"get".to_vec();
    for i in 0..keys {
        v.extend_from_slice(format!(" session:{i:08}").as_bytes());
    }
    v.extend_from_slice(b"\r\n");
    Bytes::from(v)
}

fn values(n: usize, len: usize) -> Vec<Value> {
    (0..n)
        .map(|i| Value {
            key: Bytes::from(format!("session:{i:08}")),
            flags: 1,
            cas: None,
            data: Bytes::from(vec![b'v'; len]),
        })
        .collect()
}

fn parse_once(buf: &Bytes) -> Request {
    match parse_request(buf, &Limits::default()) {
        Ok(Parsed::Complete { value, .. }) => value,
        other => panic!("bench input did not parse: {other:?}"),
    }
}

fn requests(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_request");
    let cases = [
        ("get", Bytes::from_static(b"get user:profile:12345\r\n")),
        ("set_100", set_request(100)),
        ("set_100k", set_request(100_000)),
        ("multi_get_100", multi_get(100)),
    ];
    for (name, buf) in &cases {
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), buf, |b, buf| {
            b.iter(|| black_box(parse_once(black_box(buf))))
        });
    }
    g.finish();
    let set = parse_once(&set_request(1000));
    c.bench_function("compose_request/set_1000", |b| {
        let mut dst = BytesMut::with_capacity(2048);
        b.iter(|| {
            dst.clear();
            compose_request(black_box(&set), &mut dst);
            black_box(dst.len())
        })
    });
}

fn responses(c: &mut Criterion) {
    let mut g = c.benchmark_group("values");
    for (n, len) in [(1usize, 100usize), (100, 100), (1, 100_000)] {
        let resp = Response::Values(values(n, len));
        let mut wire = BytesMut::new();
        compose_response(&resp, &mut wire);
        let wire = wire.freeze();
        let req = parse_once(&multi_get(n));
        g.throughput(Throughput::Bytes(wire.len() as u64));
        let id = format!("{n}x{len}");
        g.bench_with_input(BenchmarkId::new("compose", &id), &resp, |b, resp| {
            let mut dst = BytesMut::with_capacity(wire.len());
            b.iter(|| {
                dst.clear();
                compose_response(black_box(resp), &mut dst);
                black_box(dst.len())
            })
        });
        g.bench_with_input(BenchmarkId::new("parse", &id), &wire, |b, wire| {
            b.iter(|| black_box(parse_response(&req, black_box(wire))))
        });
    }
    g.finish();
}

criterion_group!(benches, requests, responses);
criterion_main!(benches);
