//! Live unit state changes: `PropertiesChanged` on `org.freedesktop.systemd1.Unit` objects,
//! plus `UnitNew`/`UnitRemoved`, as `busctl monitor` would show them after `Subscribe()`.
//!
//! systemd only emits these to subscribed clients: the watch calls `Subscribe()` once its match
//! rules are in place.

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::{self, Stream, StreamExt};
use zbus::message::Type;
use zbus::zvariant::OwnedValue;
use zbus::MatchRule;

use super::proxy::{ManagerProxy, SYSTEMD1};
use super::unit::{glob_match, unit_name_from_path};
use super::Error;

/// What happened to a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitEvent {
    /// The manager loaded the unit (`UnitNew`).
    New,
    /// The manager unloaded the unit (`UnitRemoved`, e.g. garbage-collected when inactive).
    Removed,
    /// `ActiveState` or `SubState` changed.
    Changed,
}

impl UnitEvent {
    /// `new`, `removed` or `changed`.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitEvent::New => "new",
            UnitEvent::Removed => "removed",
            UnitEvent::Changed => "changed",
        }
    }
}

/// One observed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitChange {
    /// The unit's name.
    pub unit: String,
    /// What happened.
    pub event: UnitEvent,
    /// The new `ActiveState` (for [`UnitEvent::Changed`]).
    pub active_state: Option<String>,
    /// The new `SubState` (for [`UnitEvent::Changed`]).
    pub sub_state: Option<String>,
}

/// A stream of [`UnitChange`]s; ends when the connection closes, or when the manager left
/// the bus (it died) and did not come back within [`super::Timeouts::manager_return`]; then
/// [`UnitWatch::error`] says which.
///
/// Poll it continuously: like every zbus stream it holds a bounded queue, and a full queue
/// stops the connection from reading further messages.
pub struct UnitWatch {
    inner: Pin<Box<dyn Stream<Item = UnitChange> + Send>>,
    /// Yields once the manager has been gone from the bus for the grace time.
    gone: Pin<Box<dyn Stream<Item = Duration> + Send>>,
    error: Option<Error>,
}

impl UnitWatch {
    /// Why the stream ended: the manager left the bus ([`Error::ManagerGone`]) or the
    /// connection was lost ([`Error::ConnectionLost`]); `None` while it runs.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }
}

/// A stream that yields once the manager's name has had no owner for `grace`.
fn manager_gone(
    owners: zbus::fdo::NameOwnerChangedStream,
    grace: Duration,
) -> impl Stream<Item = Duration> + Send {
    stream::unfold(Some(owners), move |owners| async move {
        let mut owners = owners?;
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let at = deadline;
            tokio::select! {
                change = owners.next() => {
                    let change = change?;
                    let back = change.args().is_ok_and(|a| a.new_owner.is_some());
                    deadline = (!back).then(|| tokio::time::Instant::now() + grace);
                }
                () = async { tokio::time::sleep_until(at.unwrap_or_else(tokio::time::Instant::now)).await }, if at.is_some() => {
                    return Some((grace, None));
                }
            }
        }
    })
}

impl std::fmt::Debug for UnitWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitWatch").finish_non_exhaustive()
    }
}

type Changed = (String, HashMap<String, OwnedValue>, Vec<String>);

impl UnitWatch {
    pub(crate) async fn new(
        conn: &zbus::Connection,
        proxy: &ManagerProxy<'static>,
        patterns: Vec<String>,
        grace: Duration,
    ) -> Result<Self, Error> {
        let what = "watching units";
        let err = |e| Error::from_call(what, None, e);
        let rule = MatchRule::builder()
            .msg_type(Type::Signal)
            .sender(SYSTEMD1)
            .and_then(|b| b.interface("org.freedesktop.DBus.Properties"))
            .and_then(|b| b.member("PropertiesChanged"))
            .and_then(|b| b.path_namespace("/org/freedesktop/systemd1/unit"))
            .and_then(|b| b.arg(0, "org.freedesktop.systemd1.Unit"))
            .map_err(err)?
            .build();
        let props = zbus::MessageStream::for_match_rule(rule, conn, Some(1024))
            .await
            .map_err(err)?;
        let owners = zbus::fdo::DBusProxy::new(conn)
            .await
            .map_err(err)?
            .receive_name_owner_changed_with_args(&[(0, SYSTEMD1)])
            .await
            .map_err(err)?;
        let new = proxy.receive_unit_new().await.map_err(err)?;
        let removed = proxy.receive_unit_removed().await.map_err(err)?;
        match proxy.subscribe().await {
            Err(zbus::Error::MethodError(name, _, _))
                if name.as_str() == "org.freedesktop.systemd1.AlreadySubscribed" => {}
            other => other.map_err(err)?,
        }

        let props = props.filter_map(|msg| async move {
            let msg = msg.ok()?;
            let path = msg.header().path()?.to_string();
            let unit = unit_name_from_path(&path)?;
            let (_, changed, _): Changed = msg.body().deserialize().ok()?;
            let get = |k: &str| {
                changed
                    .get(k)
                    .and_then(|v| <&str>::try_from(v).ok())
                    .map(str::to_owned)
            };
            let (active_state, sub_state) = (get("ActiveState"), get("SubState"));
            (active_state.is_some() || sub_state.is_some()).then_some(UnitChange {
                unit,
                event: UnitEvent::Changed,
                active_state,
                sub_state,
            })
        });
        let loaded = |unit: String, event| UnitChange {
            unit,
            event,
            active_state: None,
            sub_state: None,
        };
        let new = new.filter_map(move |s| {
            std::future::ready(s.args().ok().map(|a| loaded(a.id, UnitEvent::New)))
        });
        let removed = removed.filter_map(move |s| {
            std::future::ready(s.args().ok().map(|a| loaded(a.id, UnitEvent::Removed)))
        });
        // Report a state only when it differs from the last one seen for that unit.
        let mut last: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
        let merged = stream::select(props, stream::select(new, removed))
            .filter(move |c| {
                let wanted = patterns.is_empty() || patterns.iter().any(|p| glob_match(p, &c.unit));
                std::future::ready(wanted)
            })
            .filter_map(move |c| {
                let keep = match c.event {
                    UnitEvent::Changed => {
                        let now = (c.active_state.clone(), c.sub_state.clone());
                        last.insert(c.unit.clone(), now.clone()).as_ref() != Some(&now)
                    }
                    UnitEvent::Removed => {
                        last.remove(&c.unit);
                        true
                    }
                    UnitEvent::New => true,
                };
                std::future::ready(keep.then_some(c))
            });
        Ok(UnitWatch {
            inner: Box::pin(merged),
            gone: Box::pin(manager_gone(owners, grace)),
            error: None,
        })
    }
}

impl Stream for UnitWatch {
    type Item = UnitChange;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.error.is_some() {
            return Poll::Ready(None);
        }
        if let Poll::Ready(Some(after)) = self.gone.as_mut().poll_next(cx) {
            self.error = Some(Error::ManagerGone {
                what: "watching units".to_owned(),
                after,
            });
            return Poll::Ready(None);
        }
        let next = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(None) = next {
            self.error = Some(Error::ConnectionLost {
                what: "watching units".to_owned(),
            });
        }
        next
    }
}
