//! The push channel of a device's open documents (PROTOCOL.md §13,
//! `client/src/watch.rs`): the documents watched through one session share
//! one thread (and its HTTP/2 connection), each still hears only of its own
//! file, each ends the moment its `Watch` is dropped, and the shared thread
//! ends with the last one.
//!
//! A test binary of its own, with one test: it counts the process's
//! push-channel threads, which another test running beside it would add to.

use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::time::Duration;

use irm_client::{Session, Watch, WatchSignal};
use irm_core::protocol::{CreateUserRequest, Role, WatchSubject};
use irm_core::{Rights, SealedHeader};
use irm_e2e::stage::{AdminSessions, enroll};
use irm_e2e::{Server, seal_directly};

/// The threads of this process named `irm-watch` (Linux: `/proc`).
fn push_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.trim_end() == "irm-watch")
        })
        .count()
}

/// A document of alice's, open and watched: its header and its signals.
fn open_watched(
    server: &Server,
    admin: &Session,
    alice: &Session,
) -> (SealedHeader, Watch, Receiver<WatchSignal>) {
    let (info, _) = admin.server_key().expect("the server key");
    let sealed = seal_directly(
        server,
        &info.url,
        "alice",
        Rights::VIEW,
        None,
        None,
        b"a,b\n",
    );
    let header = SealedHeader::read_from(&mut &sealed[..]).expect("a header");
    let grant = alice.grant(&header, false).expect("alice is granted");
    let (tx, signals) = channel();
    let watch = alice
        .watch(&grant, move |signal| {
            let _ = tx.send(signal);
        })
        .expect("the channel starts");
    (header, watch, signals)
}

/// The next signal (a generous bound: a failure, not a timing check).
fn signalled(signals: &Receiver<WatchSignal>) -> WatchSignal {
    signals
        .recv_timeout(Duration::from_secs(60))
        .expect("a push-channel signal")
}

#[test]
fn a_sessions_open_documents_share_one_push_channel_and_each_ends_when_dropped() {
    let server = Server::start();
    let admins = AdminSessions::enroll(&server);
    let admin = &admins.admin;
    let code = admins.add_user(&CreateUserRequest {
        name: "alice".into(),
        display_name: "Alice Example".into(),
        roles: vec![Role::User],
        groups: vec![],
    });
    let home = tempfile::TempDir::new().expect("a directory");
    let alice = enroll(&server, home.path(), "alice", &code, "alice passphrase");
    assert_eq!(push_threads(), 0, "nothing watched yet");

    let (first, first_watch, first_signals) = open_watched(&server, admin, &alice);
    let (second, second_watch, second_signals) = open_watched(&server, admin, &alice);
    let (third, third_watch, third_signals) = open_watched(&server, admin, &alice);

    // Each stream hears of its own file only.
    admin
        .revoke_file(&second.file_id().to_string())
        .expect("the admin revokes the second file");
    assert_eq!(
        signalled(&second_signals),
        WatchSignal::Recheck(WatchSubject::File)
    );
    // Counted once a stream has spoken: a thread names itself as it
    // starts, so one just spawned may not show its name yet.
    assert_eq!(push_threads(), 1, "three documents, one thread");

    // A dropped watch has ended once the drop returns: its handler (and
    // the sender it holds) is gone, while the others still hear.
    drop(second_watch);
    assert_eq!(
        second_signals.try_recv(),
        Err(TryRecvError::Disconnected),
        "the dropped document's stream is gone"
    );
    admin
        .revoke_file(&third.file_id().to_string())
        .expect("the admin revokes the third file");
    assert_eq!(
        signalled(&third_signals),
        WatchSignal::Recheck(WatchSubject::File)
    );
    assert_eq!(
        first_signals.try_recv(),
        Err(TryRecvError::Empty),
        "the first file was not changed"
    );

    // The last watch takes the thread with it.
    drop(third_watch);
    drop(first_watch);
    assert_eq!(first_signals.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(push_threads(), 0, "no document watched, no thread");

    // The next document starts the channel again, and it still works.
    let (fourth, _fourth_watch, fourth_signals) = open_watched(&server, admin, &alice);
    admin
        .revoke_file(&fourth.file_id().to_string())
        .expect("the admin revokes the fourth file");
    assert_eq!(
        signalled(&fourth_signals),
        WatchSignal::Recheck(WatchSubject::File)
    );
    assert_eq!(push_threads(), 1);
    let _ = first;
}
