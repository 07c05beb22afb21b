//! A bounded async view of an informer's changes.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use tokio::sync::mpsc;

use super::Change;

/// What a [`Subscription`] yields.
#[derive(Debug, Clone)]
pub enum Notification<K> {
    /// A change, in order.
    Change(Change<K>),
    /// This many events were dropped because the subscriber fell behind; re-read the
    /// informer's store to catch up.
    Missed(u64),
}

/// Receives an informer's events through a bounded buffer. Made by
/// [`Informer::subscribe`](super::Informer::subscribe).
#[derive(Debug)]
pub struct Subscription<K> {
    receiver: mpsc::Receiver<Change<K>>,
    missed: Arc<AtomicU64>,
}

impl<K> Subscription<K> {
    /// The next notification; `None` when the informer is gone.
    pub async fn recv(&mut self) -> Option<Notification<K>> {
        let missed = self.missed.swap(0, Ordering::AcqRel);
        if missed > 0 {
            return Some(Notification::Missed(missed));
        }
        let event = self.receiver.recv().await?;
        Some(Notification::Change(event))
    }
}

pub(super) struct Sender<K> {
    sender: mpsc::Sender<Change<K>>,
    missed: Arc<AtomicU64>,
}

impl<K> Sender<K> {
    /// Never blocks: a full buffer drops the event and counts it.
    pub(super) fn send(&self, event: &Change<K>) {
        match self.sender.try_send(event.clone()) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.missed.fetch_add(1, Ordering::AcqRel);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

pub(super) fn channel<K>(capacity: usize) -> (Sender<K>, Subscription<K>) {
    let (sender, receiver) = mpsc::channel(capacity.max(1));
    let missed = Arc::new(AtomicU64::new(0));
    (
        Sender {
            sender,
            missed: missed.clone(),
        },
        Subscription { receiver, missed },
    )
}
