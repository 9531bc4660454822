//! Encode and decode throughput of STREAM_DATA frames, the hot path of every byte relayed.
//! Run: `cargo bench -p httvps-proto --bench codec`; criterion prints GiB/s per payload size.

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use httvps_proto::frame::{Frame, StreamData};
use httvps_proto::StreamId;

const SIZES: [usize; 3] = [1024, 16 * 1024, 32 * 1024];

fn data_frame(size: usize) -> Frame {
    Frame::StreamData(StreamData {
        stream_id: StreamId(7),
        data: Bytes::from(vec![0xAB; size]),
    })
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_stream_data");
    for size in SIZES {
        let frame = data_frame(size);
        let mut buf = BytesMut::with_capacity(size + 64);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &frame, |b, frame| {
            b.iter(|| {
                buf.clear();
                black_box(frame).encode(&mut buf);
                black_box(buf.len());
            })
        });
        // Header only: what a driver pays when it writes the payload Bytes separately.
        group.bench_with_input(BenchmarkId::new("header_only", size), &frame, |b, _| {
            b.iter(|| black_box(StreamData::header(black_box(StreamId(7)))))
        });
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_stream_data");
    for size in SIZES {
        let msg = data_frame(size).to_bytes();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &msg, |b, msg| {
            b.iter(|| {
                let frame = Frame::decode(black_box(msg.clone()), 1 << 20);
                black_box(frame.is_ok())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
