//! A drop-in for [`std::sync::mpsc`] whose blocking calls mark the calling task `blocked`.
//!
//! Only calls that actually wait pay for the bookkeeping: each first tries the operation without
//! blocking, and only when that would wait does it record `chan send` / `chan receive`, the call
//! site and the time, then block in std's channel.
//!
//! ```
//! use leakcheck::sync::mpsc;
//!
//! let (tx, rx) = mpsc::sync_channel(0);
//! let sender = leakcheck::thread::spawn(move || tx.send(1).unwrap());
//! assert_eq!(rx.recv().unwrap(), 1);
//! sender.join().unwrap();
//! ```

use std::fmt;
use std::panic::Location;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

pub use std::sync::mpsc::{
    RecvError, RecvTimeoutError, SendError, TryIter, TryRecvError, TrySendError,
};

use crate::blocking::BlockedMark;

/// The reason a blocked sender shows in reports.
const SEND: &str = "chan send";
/// The reason a blocked receiver shows in reports.
const RECEIVE: &str = "chan receive";

/// Creates an unbounded channel, like [`std::sync::mpsc::channel`].
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = std_mpsc::channel();
    (Sender(tx), Receiver(rx))
}

/// Creates a bounded channel, like [`std::sync::mpsc::sync_channel`]; `bound` 0 is a rendezvous.
pub fn sync_channel<T>(bound: usize) -> (SyncSender<T>, Receiver<T>) {
    let (tx, rx) = std_mpsc::sync_channel(bound);
    (SyncSender(tx), Receiver(rx))
}

/// The sending half of an unbounded [`channel`]; sending never blocks.
pub struct Sender<T>(std_mpsc::Sender<T>);

impl<T> Sender<T> {
    /// Sends a value, like [`std::sync::mpsc::Sender::send`].
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.0.send(value)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender(self.0.clone())
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Sender { .. }")
    }
}

/// The sending half of a bounded [`sync_channel`]: a send on a full channel blocks, and shows as
/// `blocked in chan send`.
pub struct SyncSender<T>(std_mpsc::SyncSender<T>);

impl<T> SyncSender<T> {
    /// Sends a value, blocking while the channel is full, like [`std::sync::mpsc::SyncSender::send`].
    #[track_caller]
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        match self.0.try_send(value) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(value)) => Err(SendError(value)),
            Err(TrySendError::Full(value)) => {
                let _blocked = BlockedMark::enter(SEND, Location::caller());
                self.0.send(value)
            }
        }
    }

    /// Sends without blocking, like [`std::sync::mpsc::SyncSender::try_send`].
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.0.try_send(value)
    }
}

impl<T> Clone for SyncSender<T> {
    fn clone(&self) -> Self {
        SyncSender(self.0.clone())
    }
}

impl<T> fmt::Debug for SyncSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("SyncSender { .. }")
    }
}

/// The receiving half of a channel: a receive on an empty channel blocks, and shows as
/// `blocked in chan receive`.
pub struct Receiver<T>(std_mpsc::Receiver<T>);

impl<T> Receiver<T> {
    /// Receives a value, blocking while the channel is empty, like
    /// [`std::sync::mpsc::Receiver::recv`].
    #[track_caller]
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_at(Location::caller())
    }

    fn recv_at(&self, site: &'static Location<'static>) -> Result<T, RecvError> {
        match self.0.try_recv() {
            Ok(value) => Ok(value),
            Err(TryRecvError::Disconnected) => Err(RecvError),
            Err(TryRecvError::Empty) => {
                let _blocked = BlockedMark::enter(RECEIVE, site);
                self.0.recv()
            }
        }
    }

    /// Receives a value, waiting at most `timeout`, like
    /// [`std::sync::mpsc::Receiver::recv_timeout`].
    #[track_caller]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        match self.0.try_recv() {
            Ok(value) => Ok(value),
            Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
            Err(TryRecvError::Empty) => {
                let _blocked = BlockedMark::enter(RECEIVE, Location::caller());
                self.0.recv_timeout(timeout)
            }
        }
    }

    /// Receives without blocking, like [`std::sync::mpsc::Receiver::try_recv`].
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.0.try_recv()
    }

    /// A blocking iterator over received values, like [`std::sync::mpsc::Receiver::iter`].
    #[track_caller]
    pub fn iter(&self) -> Iter<'_, T> {
        Iter {
            receiver: self,
            site: Location::caller(),
        }
    }

    /// A non-blocking iterator over the values already sent, like
    /// [`std::sync::mpsc::Receiver::try_iter`].
    pub fn try_iter(&self) -> TryIter<'_, T> {
        self.0.try_iter()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Receiver { .. }")
    }
}

/// A blocking iterator over a [`Receiver`]'s values; created by [`Receiver::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    receiver: &'a Receiver<T>,
    site: &'static Location<'static>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.receiver.recv_at(self.site).ok()
    }
}

/// An owning blocking iterator over a [`Receiver`]'s values; created by `into_iter`.
#[derive(Debug)]
pub struct IntoIter<T> {
    receiver: Receiver<T>,
    site: &'static Location<'static>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.receiver.recv_at(self.site).ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    #[track_caller]
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    #[track_caller]
    fn into_iter(self) -> IntoIter<T> {
        IntoIter {
            receiver: self,
            site: Location::caller(),
        }
    }
}
