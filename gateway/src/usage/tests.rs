use super::*;

fn reporter(max_queue: usize) -> UsageReporter {
    let client = ControlPlaneClient::new(
        "http://127.0.0.1:9/".parse().unwrap(),
        crate::control_plane::Secret::new("t"),
        Duration::from_millis(200),
    )
    .unwrap();
    UsageReporter::new(Arc::new(client), Duration::from_secs(1), max_queue)
}

#[test]
fn unsent_counts_merge_into_one_report_and_sent_ones_keep_their_content() {
    let r = reporter(10);
    let device = Uuid::new_v4().to_string();
    let s = r.register(Some(Uuid::new_v4()), &device).unwrap();
    let node: Arc<str> = Arc::from(Uuid::new_v4().to_string());
    s.add(Some(&node), 10, 20);
    r.collect();
    s.add(Some(&node), 1, 2);
    r.collect();
    {
        let q = r.inner.queue.lock().unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(
            (
                q[0].report.records[0].bytes_up,
                q[0].report.records[0].bytes_down
            ),
            (11, 22)
        );
    }
    // Once attempted, a report is frozen: new counts go into a new report.
    r.inner.queue.lock().unwrap()[0].attempts = 1;
    s.add(None, 5, 0);
    r.session_ended(&s);
    let q = r.inner.queue.lock().unwrap();
    assert_eq!(q.len(), 2);
    assert_eq!(q[0].report.records.len(), 1);
    assert_ne!(q[0].report.report_id, q[1].report.report_id);
}

#[test]
fn overflow_drops_the_oldest_and_counts_it() {
    let r = reporter(1);
    let s = r.register(None, &Uuid::new_v4().to_string()).unwrap();
    s.add(None, 7, 0);
    r.collect();
    r.inner.queue.lock().unwrap()[0].attempts = 1;
    s.add(None, 3, 0);
    r.collect();
    assert_eq!(r.queued(), 1);
    assert_eq!(r.stats().bytes_dropped.load(Ordering::Relaxed), 7);
}

#[test]
fn non_uuid_devices_are_not_counted() {
    assert!(reporter(1).register(None, "dev-1").is_none());
}
