//! Read and write timeouts on a connection that cost nothing while it makes progress.
//!
//! kube's client times reads out with `hyper-timeout`, which moves a timer back to
//! "now" after every successful read and forward again on the next wait: two timer
//! re-registrations and, most of the time, a wake-up of the runtime's driver (an
//! `eventfd` write and one more trip through `epoll`) per read. A controller reading a
//! busy watch paid for that on every event. Here a read that succeeds only clears a
//! field; the timer is armed once, when a wait starts after progress, and re-armed at
//! most once per timeout period while the connection keeps making progress.

use std::{
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use futures::future::BoxFuture;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use tokio::time::{Instant, Sleep};

/// Fails a direction of a connection that has waited `timeout` without progress.
#[derive(Debug)]
struct Deadline {
    timeout: Option<Duration>,
    /// When the current wait began; `None` while the last attempt made progress.
    waiting_since: Option<Instant>,
    /// Fires no later than the current wait's deadline; when it fires early (the wait
    /// it was armed for ended), it is moved to the current one.
    alarm: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    fn new(timeout: Option<Duration>) -> Self {
        Self {
            timeout,
            waiting_since: None,
            alarm: None,
        }
    }

    fn progressed(&mut self) {
        self.waiting_since = None;
    }

    /// The connection could not go on: start (or go on) waiting, and fail once the
    /// wait has lasted the timeout.
    fn waiting(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(timeout) = self.timeout else {
            return Ok(());
        };
        let deadline = *self.waiting_since.get_or_insert_with(Instant::now) + timeout;
        let alarm = self
            .alarm
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        while alarm.as_mut().poll(cx).is_ready() {
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no progress on the connection for {timeout:?}"),
                ));
            }
            alarm.as_mut().reset(deadline);
        }
        Ok(())
    }

    fn check<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Pending => match self.waiting(cx) {
                Ok(()) => Poll::Pending,
                Err(timed_out) => Poll::Ready(Err(timed_out)),
            },
            ready => {
                self.progressed();
                ready
            }
        }
    }
}

/// A connection whose reads and writes each fail after waiting their timeout.
#[derive(Debug)]
pub(super) struct Deadlined<S> {
    io: S,
    read: Deadline,
    write: Deadline,
}

impl<S> Deadlined<S> {
    /// A write's outcome. Writing also starts the read wait afresh, so a response is
    /// given the whole timeout from its request, however long the connection sat idle.
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(_)) = poll {
            self.read.progressed();
        }
        self.write.check(cx, poll)
    }
}

impl<S: Read + Unpin> Read for Deadlined<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_read(cx, buf);
        this.read.check(cx, poll)
    }
}

impl<S: Write + Unpin> Write for Deadlined<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.wrote(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.write.check(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_shutdown(cx);
        this.write.check(cx, poll)
    }
}

impl<S: Connection> Connection for Deadlined<S> {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

/// A connector whose connections are [`Deadlined`].
#[derive(Debug, Clone)]
pub(super) struct WithDeadlines<C> {
    inner: C,
    read: Option<Duration>,
    write: Option<Duration>,
}

impl<C> WithDeadlines<C> {
    pub(super) fn new(inner: C, read: Option<Duration>, write: Option<Duration>) -> Self {
        Self { inner, read, write }
    }
}

impl<C> tower::Service<http::Uri> for WithDeadlines<C>
where
    C: tower::Service<http::Uri>,
    C::Future: Send + 'static,
{
    type Response = Deadlined<C::Response>;
    type Error = C::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let (read, write) = (self.read, self.write);
        let connecting = self.inner.call(uri);
        Box::pin(async move {
            let io = connecting.await?;
            Ok(Deadlined {
                io,
                read: Deadline::new(read),
                write: Deadline::new(write),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    fn waiting(deadline: &mut Deadline) -> io::Result<()> {
        deadline.waiting(&mut Context::from_waker(Waker::noop()))
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_fails_once_it_has_lasted_the_timeout() {
        let mut deadline = Deadline::new(Some(Duration::from_secs(10)));
        assert!(waiting(&mut deadline).is_ok());
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(waiting(&mut deadline).is_ok());
        tokio::time::advance(Duration::from_secs(1)).await;
        let error = waiting(&mut deadline).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn progress_starts_the_next_wait_afresh() {
        let mut deadline = Deadline::new(Some(Duration::from_secs(10)));
        assert!(waiting(&mut deadline).is_ok());
        tokio::time::advance(Duration::from_secs(8)).await;
        deadline.progressed();
        assert!(waiting(&mut deadline).is_ok());
        // The alarm armed for the first wait fires here, early for this one.
        tokio::time::advance(Duration::from_secs(8)).await;
        assert!(waiting(&mut deadline).is_ok());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            waiting(&mut deadline).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_timeout_a_wait_never_fails() {
        let mut deadline = Deadline::new(None);
        assert!(waiting(&mut deadline).is_ok());
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(waiting(&mut deadline).is_ok());
        assert!(deadline.alarm.is_none());
    }
}
