//! The push channel of a device's open documents (PROTOCOL.md §13,
//! `client/src/watch.rs`): the documents watched through one session share
//! one thread and one HTTP/2 connection, each still hears only of its own
//! file, each ends the moment its `Watch` is dropped, the shared thread
//! ends with the last one, and streams broken together by a restart each
//! reconnect.
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

/// This process's established TCP connections to `port` (client ends; the
/// server is in this process too, so its ends are told apart by port).
fn connections_to(port: u16) -> usize {
    ["/proc/self/net/tcp", "/proc/self/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .map(|line| {
                    line.split_whitespace()
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        })
        .filter(|fields| {
            let remote_port = fields
                .get(2)
                .and_then(|remote| remote.rsplit(':').next())
                .and_then(|hex| u16::from_str_radix(hex, 16).ok());
            // State 01: established.
            remote_port == Some(port) && fields.get(3).map(String::as_str) == Some("01")
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
        Rights::VIEW | Rights::COPY,
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
    let mut server = Server::start();
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

    // Every stream has spoken once the first and third files' changes
    // reached them too; then alice's session holds one connection for the
    // three streams, beside those of the plain calls (compared below with
    // their number once no document is watched).
    for (header, signals) in [(&first, &first_signals), (&third, &third_signals)] {
        admin
            .restrict_file(&header.file_id().to_string(), Rights::COPY)
            .expect("the admin takes the copy right away");
        assert_eq!(signalled(signals), WatchSignal::Recheck(WatchSubject::File));
    }
    let port: u16 = server
        .url
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("the server's port");
    let watching = connections_to(port);

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
    let plain = connections_to(port);
    assert_eq!(
        watching,
        plain + 1,
        "one connection for the three streams ({watching} while watched, {plain} after)"
    );

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

    // A restart breaks every stream at once: each says so, and each
    // reconnects by itself (one at a time onto the new connection) and is
    // told to check, its cursor being of the earlier process.
    let (fifth, _fifth_watch, fifth_signals) = open_watched(&server, admin, &alice);
    // Connected once it has spoken.
    admin
        .revoke_file(&fifth.file_id().to_string())
        .expect("the admin revokes the fifth file");
    assert_eq!(
        signalled(&fifth_signals),
        WatchSignal::Recheck(WatchSubject::File)
    );
    server.restart(|_| {});
    for signals in [&fourth_signals, &fifth_signals] {
        assert_eq!(signalled(signals), WatchSignal::Lost);
        assert_eq!(
            signalled(signals),
            WatchSignal::Recheck(WatchSubject::Unknown)
        );
    }
}
