//! `unitwright::render` against the real thing: rendered units are loaded by a real
//! `systemd --user` (tests/support) and what the manager parsed is read back over D-Bus —
//! `Environment` (`as`), `ExecStart`/`ExecStartPre`/`ExecStartPost` (`a(sasbttttuii)`: argv) and
//! `Description` — and must be exactly the values that went in, with nothing added.
//!
//! The manager keeps `$$` in the argv it shows (`replace_env_argv` turns it into `$` only when
//! the command runs), so argv read over D-Bus is compared with the values' `$` doubled on lines
//! without the `:` prefix; [`exec_time_argv_is_exactly_the_values`] runs a service to check what
//! the process really gets.
//!
//! Each case writes a unit with a new name and asks the manager to `LoadUnit` it, which reads it
//! from disk without a daemon-reload. systemd notices new files by the unit directory's mtime;
//! when two files land within the same mtime tick the new one is "not-found", and only then the
//! test reloads once and asks again. One manager serves the whole property test.
//!
//! With `CI=true` the tests fail when the sandbox cannot start; otherwise they skip loudly.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use support::UserManager;
use unitwright::bus::{Manager, Options, Scope};
use unitwright::render::Renderer;
use zbus::proxy::CacheProperties;
use zbus::zvariant::OwnedObjectPath;

/// One `ExecStart` entry: path, argv, ignore-failure, 4 timestamps, pid, code, status.
type ExecEntry = (String, Vec<String>, bool, u64, u64, u64, u64, u32, i32, i32);

/// What the manager made of a unit.
#[derive(Debug)]
struct Loaded {
    load_state: String,
    description: String,
    environment: Vec<String>,
    exec_start: Vec<Vec<String>>,
    exec_start_pre: Vec<Vec<String>>,
    exec_start_post: Vec<Vec<String>>,
}

/// A bus client with its own runtime.
struct Client {
    manager: Option<Manager>,
    rt: tokio::runtime::Runtime,
}

impl Drop for Client {
    fn drop(&mut self) {
        // The connection's tasks are dropped in the runtime's context.
        let _guard = self.rt.enter();
        drop(self.manager.take());
    }
}

impl Client {
    fn new(sb: &UserManager) -> Client {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let options = Options {
            address: Some(sb.bus_address()),
            ..Options::default()
        };
        let manager = rt
            .block_on(Manager::connect_with(Scope::User, &options))
            .expect("connecting to the sandbox's manager");
        Client {
            manager: Some(manager),
            rt,
        }
    }

    fn manager(&self) -> &Manager {
        self.manager.as_ref().expect("connected")
    }

    async fn property<T>(&self, path: &OwnedObjectPath, interface: &str, name: &str) -> T
    where
        T: TryFrom<zbus::zvariant::OwnedValue>,
        T::Error: Into<zbus::Error>,
    {
        let proxy = zbus::proxy::Builder::<zbus::Proxy>::new(self.manager().connection())
            .destination("org.freedesktop.systemd1")
            .unwrap()
            .path(path.clone())
            .unwrap()
            .interface(interface.to_owned())
            .unwrap()
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .unwrap();
        proxy
            .get_property::<T>(name)
            .await
            .unwrap_or_else(|e| panic!("reading {interface}.{name}: {e}"))
    }

    async fn load_unit(&self, name: &str) -> OwnedObjectPath {
        let reply = self
            .manager()
            .connection()
            .call_method(
                Some("org.freedesktop.systemd1"),
                "/org/freedesktop/systemd1",
                Some("org.freedesktop.systemd1.Manager"),
                "LoadUnit",
                &(name,),
            )
            .await
            .unwrap();
        reply.body().deserialize().unwrap()
    }

    /// Loads `name` (reloading once if the manager has not noticed the new file) and reads it.
    fn load(&self, name: &str) -> Loaded {
        self.rt.block_on(async {
            let mut path = self.load_unit(name).await;
            let mut state: String = self
                .property(&path, "org.freedesktop.systemd1.Unit", "LoadState")
                .await;
            if state == "not-found" {
                self.manager().reload().await.unwrap();
                path = self.load_unit(name).await;
                state = self
                    .property(&path, "org.freedesktop.systemd1.Unit", "LoadState")
                    .await;
            }
            let svc = "org.freedesktop.systemd1.Service";
            let argv = |entries: Vec<ExecEntry>| -> Vec<Vec<String>> {
                entries.into_iter().map(|e| e.1).collect()
            };
            Loaded {
                load_state: state,
                description: self
                    .property(&path, "org.freedesktop.systemd1.Unit", "Description")
                    .await,
                environment: self.property(&path, svc, "Environment").await,
                exec_start: argv(self.property(&path, svc, "ExecStart").await),
                exec_start_pre: argv(self.property(&path, svc, "ExecStartPre").await),
                exec_start_post: argv(self.property(&path, svc, "ExecStartPost").await),
            }
        })
    }
}

const PROOF: &str = "[Unit]
Description={{ description | setting }}

[Service]
Type=oneshot
ExecStart=/bin/true {{ args | exec_arg }}
ExecStart=:/bin/true {{ literal_args | exec_arg_literal }}
Environment={{ one | env(name=\"ONE\") }}
{% if vars %}Environment={{ vars | env }}{% endif %}
ExecStartPost=/bin/true sentinel
";

fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[\"'\\\\%$; {}=#`\n\r\t\u{b}\u{7f}xi\u{e9}\u{1f600}\u{80}\u{2028}]{0,16}",
        2 => "[^\u{0}]{0,24}",
        1 => Just("${HOME}".to_owned()),
        1 => Just("$HOME x".to_owned()),
        1 => Just(";".to_owned()),
        1 => Just("\\".to_owned()),
        1 => Just("x\nExecStartPre=/bin/evil".to_owned()),
        1 => Just("x\n[Install]\nWantedBy=default.target".to_owned()),
        1 => Just("%i %n %%".to_owned()),
        1 => "[a-z$%\\\\\"]{2000,3000}",
    ]
}

/// Description values that `setting` can carry (no control characters, no edge blanks, no
/// trailing backslash): the filter's refusals are unit-tested; here what renders must load.
fn description() -> impl Strategy<Value = String> {
    hostile_text().prop_map(|s| {
        let s: String = s.chars().filter(|c| !c.is_control()).collect();
        // Backslashes and blanks together: "\\ \\" must not end as "\\".
        let s = s
            .trim_start()
            .trim_end_matches(|c: char| c == '\\' || c.is_whitespace())
            .to_owned();
        if s.is_empty() {
            "x".to_owned()
        } else {
            s
        }
    })
}

#[derive(Debug, Clone)]
struct Case {
    description: String,
    args: Vec<String>,
    literal_args: Vec<String>,
    one: String,
    vars: Vec<(String, String)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        description(),
        prop::collection::vec(hostile_text(), 0..6),
        prop::collection::vec(hostile_text(), 0..4),
        hostile_text(),
        prop::collection::btree_map("V_[A-Z0-9_]{0,6}", hostile_text(), 0..5),
    )
        .prop_map(|(description, args, literal_args, one, vars)| Case {
            description,
            args,
            literal_args,
            one,
            vars: vars.into_iter().collect(),
        })
}

fn values(c: &Case) -> Value {
    let vars: serde_json::Map<String, Value> = c
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "description": c.description,
        "args": c.args,
        "literal_args": c.literal_args,
        "one": c.one,
        "vars": vars,
    })
}

/// `$` → `$$`: how the manager shows an argument until exec time.
fn doubled(args: &[String]) -> Vec<String> {
    args.iter().map(|a| a.replace('$', "$$")).collect()
}

fn with_path(path: &str, args: &[String]) -> Vec<String> {
    std::iter::once(path.to_owned())
        .chain(args.iter().cloned())
        .collect()
}

#[test]
fn systemd_reads_back_every_rendered_value_and_nothing_more() {
    let Some(sb) = UserManager::start() else {
        return;
    };
    let client = Client::new(&sb);
    let mut renderer = Renderer::new();
    renderer.add_template("proof.service.tera", PROOF).unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 48,
        ..Config::default()
    });
    let n = std::cell::Cell::new(0);
    runner
        .run(&case(), |c| {
            n.set(n.get() + 1);
            let unit = format!("render-proof-{}.service", n.get());
            let values = values(&c);
            let text = renderer
                .render("proof.service.tera", &values)
                .map_err(|e| TestCaseError::fail(format!("render refused: {e}")))?;
            sb.write_unit(&unit, &text);
            let got = client.load(&unit);
            prop_assert_eq!(&got.load_state, "loaded", "{}", text);
            prop_assert_eq!(&got.description, &c.description);
            prop_assert_eq!(
                &got.exec_start,
                &vec![
                    with_path("/bin/true", &doubled(&c.args)),
                    with_path("/bin/true", &c.literal_args)
                ]
            );
            prop_assert!(got.exec_start_pre.is_empty(), "{:?}", got.exec_start_pre);
            prop_assert_eq!(
                &got.exec_start_post,
                &vec![vec!["/bin/true".to_owned(), "sentinel".to_owned()]]
            );
            let mut env = vec![format!("ONE={}", c.one)];
            env.extend(c.vars.iter().map(|(k, v)| format!("{k}={v}")));
            prop_assert_eq!(&got.environment, &env);
            Ok(())
        })
        .unwrap();
}

#[test]
fn hand_written_injections_load_as_plain_values() {
    let Some(sb) = UserManager::start() else {
        return;
    };
    let client = Client::new(&sb);
    let mut renderer = Renderer::new();
    renderer.add_template("proof.service.tera", PROOF).unwrap();
    // The oracle can fail: a naive unit with the first payload gets an injected ExecStartPre.
    sb.write_unit(
        "naive.service",
        "[Service]\nType=oneshot\nExecStart=/bin/true x\nExecStartPre=/bin/evil \\q\n",
    );
    let naive = client.load("naive.service");
    assert_eq!(
        naive.exec_start_pre,
        vec![vec!["/bin/evil".to_owned(), "\\q".to_owned()]]
    );
    let hostile = [
        "x\nExecStartPre=/bin/evil",
        "x\r[Install]\rWantedBy=default.target",
        "trailing\\",
        "\" ; /bin/evil",
        "'",
        "$HOME",
        "${HOME}",
        "$$",
        "%i%n%z%",
        "x BAR=evil",
        " leading and trailing ",
        "",
        "é\u{1f600}\u{80}",
        "\\x41\\n",
        "-",
        ":",
        "#comment",
    ];
    for (i, h) in hostile.iter().enumerate() {
        let unit = format!("hand-{i}.service");
        let c = Case {
            description: "hand-written".into(),
            args: vec![(*h).to_owned(), "after".into()],
            literal_args: vec![(*h).to_owned()],
            one: (*h).to_owned(),
            vars: vec![("V".into(), (*h).to_owned())],
        };
        let text = renderer.render("proof.service.tera", &values(&c)).unwrap();
        sb.write_unit(&unit, &text);
        let got = client.load(&unit);
        assert_eq!(got.load_state, "loaded", "{h:?}\n{text}");
        assert_eq!(
            got.exec_start,
            vec![
                with_path("/bin/true", &doubled(&c.args)),
                with_path("/bin/true", &c.literal_args)
            ],
            "{h:?}"
        );
        assert!(got.exec_start_pre.is_empty(), "{h:?}");
        assert_eq!(got.environment, vec![format!("ONE={h}"), format!("V={h}")]);
    }
}

/// Renders a shipped template from `templates/`.
fn render_shipped(name: &str, values: &Value) -> Result<String, unitwright::render::Error> {
    Renderer::render_file(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("templates")
            .join(name),
        values,
    )
}

#[test]
fn shipped_service_template_carries_hostile_values_into_the_manager() {
    let Some(sb) = UserManager::start() else {
        return;
    };
    let client = Client::new(&sb);
    let args = [
        "--name=a b",
        "$HOME",
        "${PATH}",
        ";",
        "x\nExecStartPre=/bin/evil",
        "100%",
        "\\",
    ];
    let text = render_shipped(
        "app.service.tera",
        &json!({
            "description": "My \"app\" at 100% \\o/",
            "exec": "/bin/true",
            "args": args,
            "environment": {"TOKEN": "s3 cr=et\n$X%i", "EMPTY": ""},
            "after": ["network-online.target"],
            "working_directory": "/tmp/my dir",
        }),
    )
    .unwrap();
    sb.write_unit("app.service", &text);
    let got = client.load("app.service");
    assert_eq!(got.load_state, "loaded", "{text}");
    assert_eq!(got.description, "My \"app\" at 100% \\o/");
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(
        got.exec_start,
        vec![with_path("/bin/true", &doubled(&args))]
    );
    assert!(got.exec_start_pre.is_empty());
    let mut env = got.environment.clone();
    env.sort();
    assert_eq!(
        env,
        vec!["EMPTY=".to_owned(), "TOKEN=s3 cr=et\n$X%i".to_owned()]
    );
    // What cannot be carried is refused with the template line and key.
    let e = render_shipped(
        "app.service.tera",
        &json!({"description": "x\n[Service]", "exec": "/bin/true", "args": []}),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("app.service.tera:13 (rendered line 2), [Unit] Description=: setting:"),
        "{e}"
    );
    let e = render_shipped(
        "app.service.tera",
        &json!({"description": "x", "exec": "-/bin/true", "args": []}),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("ExecStart=: exec_path:"), "{e}");
}

/// Converts the rendered `<service_name>.container` with our Quadlet conversion (in process, as
/// the generator would), loads the service into the manager and returns what it parsed.
fn load_container(sb: &UserManager, client: &Client, service_name: &str, text: &str) -> Loaded {
    use unitwright::quadlet::{container, Context, Kind, Quadlet, UnitInfo};

    let name = format!("{service_name}.container");
    let unit = unitwright::unit::parse_str(text, Path::new(&name)).unwrap();
    let q = Quadlet {
        name: name.clone(),
        path: sb.root.path().join(&name),
        dir: sb.root.path().to_owned(),
        kind: Kind::Container,
        unit,
        service_name: service_name.to_owned(),
    };
    let mut ctx = Context {
        user: true,
        podman: "/usr/bin/podman".into(),
        units: HashMap::from([(
            name.clone(),
            UnitInfo {
                kind: Kind::Container,
                service_name: service_name.to_owned(),
                resource_name: String::new(),
                containers_to_start: Vec::new(),
            },
        )]),
        ..Context::default()
    };
    let service = container::convert(&q, &mut ctx).unwrap().to_text(false);
    let service_file = format!("{service_name}.service");
    sb.write_unit(&service_file, &service);
    let got = client.load(&service_file);
    assert_eq!(got.load_state, "loaded", "{service}");
    assert_eq!(got.exec_start.len(), 1, "{service}");
    assert!(got.exec_start_pre.is_empty(), "{service}");
    got
}

/// The words after each occurrence of `flag` in `argv`.
fn after<'a>(argv: &'a [String], flag: &str) -> Vec<&'a str> {
    argv.windows(2)
        .filter(|w| w[0] == flag)
        .map(|w| w[1].as_str())
        .collect()
}

/// The `--env` words podman gets for the console values (`$` doubled until exec time).
fn console_env(app: &str, app_info: &Value, read_only: bool) -> Vec<String> {
    let mut env = vec![
        format!("APP={app}").replace('$', "$$"),
        format!("APP_INFO={app_info}").replace('$', "$$"),
        format!("READ_ONLY={read_only}"),
    ];
    env.sort_unstable();
    env
}

#[test]
fn shipped_console_container_reaches_podman_as_exactly_the_values() {
    let Some(sb) = UserManager::start() else {
        return;
    };
    let client = Client::new(&sb);
    let node = "1be26c0b-03f2-4d2d-ae87-c02d7f33c123";
    let app_info = json!({"password": "p$a%s s\"w'o\\rd\n", "url": "https://bmc/${x}?a=1;b=%i"});
    let app = "fake; ExecStartPre=/bin/evil\n[Service]\nExecStart=/bin/evil";
    let text = render_shipped(
        "console.container.tera",
        &json!({
            "node": node,
            "image": "quay.io/ironic/console:$latest%",
            "port": 5901,
            "app": app,
            "app_info": app_info,
            "read_only": true,
        }),
    )
    .unwrap();
    let got = load_container(&sb, &client, &format!("ironic-console-{node}"), &text);
    assert_eq!(
        got.description,
        format!("Console of bare-metal node {node}")
    );
    let argv = &got.exec_start[0];
    assert_eq!(
        after(argv, "--name"),
        vec![format!("ironic-console-{node}")]
    );
    assert_eq!(after(argv, "--publish"), vec!["127.0.0.1:5901:5900"]);
    assert_eq!(
        after(argv, "--label"),
        vec![format!("org.openstack.ironic.node={node}")]
    );
    let mut env = after(argv, "--env");
    env.sort_unstable();
    assert_eq!(env, console_env(app, &app_info, true));
    assert_eq!(argv.last().unwrap(), "quay.io/ironic/console:$$latest%");
    // A port that is not a number never reaches the file.
    let e = render_shipped(
        "console.container.tera",
        &json!({"node": node, "image": "i", "port": "1:2 --privileged", "app": "a",
                "app_info": {}, "read_only": false}),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("port must be a number from 1 to 65535"), "{e}");
}

#[test]
fn shipped_console_container_carries_random_values_to_podman() {
    let Some(sb) = UserManager::start() else {
        return;
    };
    let client = Client::new(&sb);
    let mut renderer = Renderer::new();
    let name = renderer
        .add_template_file(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/console.container.tera"),
        )
        .unwrap();
    // quadlet_arg cannot carry an empty word or U+0080 (unit-tested refusals).
    let word = || {
        hostile_text().prop_filter("representable in Quadlet", |s| {
            !s.is_empty() && !s.contains('\u{80}')
        })
    };
    let strategy = (
        "[0-9a-f]{8}-[0-9a-f]{4}",
        word(),
        prop::collection::btree_map(
            "[a-z_]{1,8}",
            hostile_text().prop_filter("representable in Quadlet", |s| !s.contains('\u{80}')),
            0..4,
        ),
        1024u16..65535,
        any::<bool>(),
    );
    let mut runner = TestRunner::new(Config {
        cases: 24,
        ..Config::default()
    });
    runner
        .run(&strategy, |(node, app, info, port, read_only)| {
            let app_info = json!(info);
            let values = json!({"node": node, "image": "quay.io/ironic/console:1", "port": port,
                                "app": app, "app_info": app_info, "read_only": read_only});
            let text = renderer
                .render(&name, &values)
                .map_err(|e| TestCaseError::fail(format!("render refused: {e}")))?;
            let got = load_container(&sb, &client, &format!("ironic-console-{node}"), &text);
            let argv = &got.exec_start[0];
            let mut env = after(argv, "--env");
            env.sort_unstable();
            prop_assert_eq!(env, console_env(&app, &app_info, read_only));
            prop_assert_eq!(
                after(argv, "--publish"),
                vec![format!("127.0.0.1:{port}:5900")]
            );
            Ok(())
        })
        .unwrap();
}

/// Writes each argument after `$0` (the output file), NUL-terminated.
const ARGV_DUMP: &str = r#"[Service]
Type=oneshot
ExecStart=/bin/sh -c "for a; do printf '%%s\\000' \"$a\"; done > \"$0\"" {{ out | exec_arg }} {{ args | exec_arg }}
"#;

#[test]
fn exec_time_argv_is_exactly_the_values() {
    let Some(sb) = UserManager::start() else {
        return;
    };
    let client = Client::new(&sb);
    let mut renderer = Renderer::new();
    renderer.add_template("dump.service", ARGV_DUMP).unwrap();
    let out = sb.root.path().join("argv");
    let args = [
        "$HOME",
        "${HOME}",
        "$$",
        "$",
        "a$HOME",
        "%i%n%%",
        "x\ny\rz",
        "\" ; /bin/false",
        "'",
        "",
        "\\x41\\",
        "é\u{1f600}",
        "-",
    ];
    let text = renderer
        .render(
            "dump.service",
            &json!({"out": out.to_str().unwrap(), "args": args}),
        )
        .unwrap();
    sb.write_unit("dump.service", &text);
    let outcome = client
        .rt
        .block_on(client.manager().start("dump.service"))
        .unwrap();
    assert!(outcome.is_success(), "{outcome}\n{text}");
    let data = std::fs::read(&out).unwrap();
    let got: Vec<&[u8]> = data
        .strip_suffix(b"\0")
        .unwrap()
        .split(|&b| b == 0)
        .collect();
    let want: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    assert_eq!(got, want);
}
