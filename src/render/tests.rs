#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

fn render(name: &str, template: &str, values: &serde_json::Value) -> Result<String, Error> {
    let mut r = Renderer::new();
    r.add_template(name, template)?;
    r.render(name, values)
}

fn refused(name: &str, template: &str, values: &serde_json::Value) -> String {
    match render(name, template, values) {
        Ok(out) => panic!("rendered although it must be refused:\n{out}"),
        Err(e) => e.to_string(),
    }
}

const SERVICE: &str = "[Unit]
Description={{ description | setting }}

[Service]
ExecStart=/usr/bin/app {{ args | exec_arg }} --name={{ name | exec_arg }}
Environment={{ token | env(name=\"TOKEN\") }}
Environment={{ extra | env }}
WorkingDirectory={{ dir | path }}
";

#[test]
fn hostile_values_are_escaped_for_each_context() {
    let out = render(
        "app.service.tera",
        SERVICE,
        &json!({
            "description": "50% \"quoted\" back\\slash",
            "args": ["a b", "$HOME", "${X}", ";", "x\ny", "100%i", "\\"],
            "name": "n\"; /bin/evil",
            "token": "x BAR=evil $HOME 5%\nExecStartPre=/bin/evil",
            "extra": {"A": "1", "B": "two words"},
            "dir": "/srv/my dir/100%",
        }),
    )
    .unwrap();
    assert_eq!(
        out,
        r#"[Unit]
Description=50%% "quoted" back\slash

[Service]
ExecStart=/usr/bin/app "a b" "$$HOME" "$${X}" ";" "x\x0ay" "100%%i" "\\" --name="n\"; /bin/evil"
Environment="TOKEN=x BAR=evil $HOME 5%%\x0aExecStartPre=/bin/evil"
Environment="A=1" "B=two words"
WorkingDirectory=/srv/my dir/100%%
"#
    );
}

#[test]
fn a_newline_in_a_plain_setting_is_refused_with_template_line_key_and_value() {
    let e = refused(
        "app.service.tera",
        SERVICE,
        &json!({"description": "x\nExecStartPre=/bin/evil", "args": [], "name": "n",
                "token": "t", "extra": {}, "dir": "/srv"}),
    );
    assert_eq!(
        e,
        r#"app.service.tera:2, [Unit] Description=: setting: value "x\nExecStartPre=/"… (24 bytes) contains the control character 0x0a, which this setting cannot carry (a newline or carriage return would start a new line)"#
    );
}

#[test]
fn unfiltered_values_and_safe_are_refused_when_the_template_is_added() {
    let mut r = Renderer::new();
    let e = r
        .add_template(
            "a.service",
            "[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/echo {{ arg }}\n",
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("a.service:5: `{{ arg }}` prints a value without a context filter"),
        "{e}"
    );
    let e = r
        .add_template("b.service", "[Unit]\nDescription={{ d | safe }}\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`safe` filter is not allowed"), "{e}");
    let e = r
        .add_template(
            "c.service",
            "[Unit]\nDescription={{ d | setting | upper }}\n",
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("`{{ d | setting | upper }}`"), "{e}");
    // Literals, macros and loops over filtered values are fine.
    r.add_template(
        "d.service",
        "[Service]\n{% for a in args %}ExecStart=/bin/echo {{ a | exec_arg }} {{ 5 }}\n{% endfor %}",
    )
    .unwrap();
}

#[test]
fn the_wrong_filter_for_a_key_is_caught_by_the_structure_check() {
    // `setting` does not quote, so a space splits the argument.
    let e = refused(
        "a.service",
        "[Service]\nExecStart=/bin/echo {{ v | setting }}\n",
        &json!({"v": "a b"}),
    );
    assert!(
        e.contains("changes the number of words of ExecStart from 2 to 3"),
        "{e}"
    );
    assert!(
        e.starts_with("a.service:2, [Service] ExecStart=: setting: value \"a b\""),
        "{e}"
    );
    // `env`'s `$` is not doubled, so exec-time expansion would change it.
    let e = refused(
        "a.service",
        "[Service]\nExecStart=/bin/echo {{ v | env(name=\"A\") }}\n",
        &json!({"v": "${HOME}"}),
    );
    assert!(
        e.contains("would not be read back as written in ExecStart"),
        "{e}"
    );
    // `exec_arg` doubles `$`, which Environment= does not undo.
    let e = refused(
        "a.service",
        "[Service]\nEnvironment=A={{ v | exec_arg }}\n",
        &json!({"v": "$x"}),
    );
    assert!(e.contains("would not be read back"), "{e}");
    // But a safe value in a compatible place renders.
    render(
        "a.service",
        "[Service]\nEnvironment=A={{ v | exec_arg_literal }}\n",
        &json!({"v": "a b"}),
    )
    .unwrap();
}

#[test]
fn template_text_around_a_value_cannot_combine_with_it() {
    // A `%` of the template right before the value would make `%i` a specifier.
    let e = refused(
        "a.service",
        "[Service]\nExecStart=/bin/echo 5%{{ v | exec_arg }}\n",
        &json!({"v": "i"}),
    );
    assert!(e.contains("interprets together with it"), "{e}");
    // The template's own quotes around a quoted value split it.
    let e = refused(
        "a.service",
        "[Service]\nExecStart=/bin/echo \"x {{ v | exec_arg }}\"\n",
        &json!({"v": "a b"}),
    );
    assert!(e.contains("number of words"), "{e}");
    // A `$` of the template right before the value makes it a variable.
    let e = refused(
        "a.service",
        "[Service]\nExecStart=/bin/echo ${{ v | exec_arg }}\n",
        &json!({"v": "HOME"}),
    );
    assert!(e.contains("ExecStart"), "{e}");
}

#[test]
fn values_cannot_be_keys_or_section_names() {
    let e = refused(
        "a.service",
        "[Service]\n{{ k | setting }}=1\n",
        &json!({"k": "ExecStartPre"}),
    );
    assert!(e.contains("is used in a key"), "{e}");
    let e = refused(
        "a.service",
        "[{{ k | setting }}]\nA=1\n",
        &json!({"k": "Service"}),
    );
    assert!(e.contains("section name"), "{e}");
}

#[test]
fn control_flow_on_filtered_text_is_refused() {
    let e = refused(
        "a.service",
        "[Unit]\n{% set d = v | setting %}{% if d | length > 9 %}Description=long{% endif %}\n",
        &json!({"v": "abcdefghijk"}),
    );
    assert!(e.contains("control flow"), "{e}");
}

#[test]
fn unit_names_and_instances_are_escaped() {
    let out = render(
        "a.service",
        "[Unit]\nAfter={{ deps | unit_names }} {{ id | instance(template=\"console@.service\") }}\nDescription={{ p | path_escape }} {{ id | unit_name }}\n",
        &json!({"deps": ["network-online.target", "b.service"], "id": "node 1/x", "p": "/srv/a-b"}),
    )
    .unwrap();
    assert_eq!(
        out,
        "[Unit]\nAfter=network-online.target b.service console@node\\x201-x.service\nDescription=srv-a\\x2db node\\x201-x\n"
    );
    let e = refused(
        "a.service",
        "[Unit]\nAfter={{ d | unit_names }}\n",
        &json!({"d": "a.service b.service"}),
    );
    assert!(e.contains("is not a valid unit name"), "{e}");
    // An escaped name holds backslashes, which an exec line would decode: chain exec_arg.
    let e = refused(
        "a.service",
        "[Service]\nExecStart=/bin/echo {{ id | unit_name }}\n",
        &json!({"id": "a-b"}),
    );
    assert!(e.contains("would not be read back"), "{e}");
    render(
        "a.service",
        "[Service]\nExecStart=/bin/echo {{ id | unit_name | exec_arg }}\n",
        &json!({"id": "a-b"}),
    )
    .unwrap();
}

#[test]
fn quadlet_files_use_quadlets_reading() {
    let t = "[Container]\nImage={{ image | quadlet_value }}\nEnvironment={{ app | quadlet_arg(key=\"APP\") }}\nLabel={{ labels | quadlet_arg }}\nExec={{ args | quadlet_arg }}\n\n[Service]\nEnvironment={{ app | env(name=\"APP\") }}\n";
    let out = render(
        "x.container.tera",
        t,
        &json!({"image": "quay.io/x:1", "app": "a \"b\" $X 5% é\n", "labels": {"k": "v w"}, "args": ["--x=${Y}"]}),
    )
    .unwrap();
    assert_eq!(
        out,
        "[Container]\nImage=quay.io/x:1\nEnvironment=\"APP=a \\\"b\\\" $$X 5%% é\\x0a\"\nLabel=\"k=v w\"\nExec=\"--x=$${Y}\"\n\n[Service]\nEnvironment=\"APP=a \\\"b\\\" $X 5%% \\xc3\\xa9\\x0a\"\n"
    );
    // The systemd filter in Quadlet's Environment= would be misread (Quadlet decodes \xNN to a
    // code point, and `$` is expanded in the generated exec line).
    let e = refused(
        "x.container.tera",
        "[Container]\nEnvironment={{ app | env(name=\"APP\") }}\n",
        &json!({"app": "é"}),
    );
    assert!(e.contains("would not be read back"), "{e}");
    let e = refused(
        "x.container.tera",
        "[Container]\nImage={{ image | quadlet_value }}\n",
        &json!({"image": "\"x\""}),
    );
    assert!(e.contains("double quote"), "{e}");
}

#[test]
fn errors_do_not_echo_long_values() {
    let secret = format!("s3cr3t-{}\n", "x".repeat(100));
    let e = refused(
        "a.service",
        "[Unit]\nDescription={{ v | setting }}\n",
        &json!({ "v": secret }),
    );
    assert!(!e.contains("xxxxxxxxxxxx"), "{e}");
    assert!(e.contains("(108 bytes)"), "{e}");
}

#[test]
fn missing_and_null_values_are_errors() {
    let e = refused(
        "a.service",
        "[Unit]\nDescription={{ v | setting }}\n",
        &json!({}),
    );
    assert!(e.contains("Variable `v` not found"), "{e}");
    let e = refused(
        "a.service",
        "[Unit]\nDescription={{ v | setting }}\n",
        &json!({"v": null}),
    );
    assert!(e.contains("is null"), "{e}");
}

#[test]
fn placeholders_are_found_only_when_complete() {
    let found = placeholders("uwph1n0z uwph12n3z uwphxn1z uwph1n z", "uwph");
    assert_eq!(
        found,
        vec![(0, Ph { call: 1, item: 0 }), (9, Ph { call: 12, item: 3 })]
    );
}

#[test]
fn an_empty_list_may_not_empty_a_setting_but_may_add_no_words() {
    let e = refused(
        "a.service",
        "[Service]\nEnvironment={{ vars | env }}\n",
        &json!({"vars": {}}),
    );
    assert!(
        e.contains("leaves Environment= empty, which resets Environment"),
        "{e}"
    );
    let out = render(
        "a.service",
        "[Service]\nExecStart=/bin/echo {{ args | exec_arg }} end\n",
        &json!({"args": []}),
    )
    .unwrap();
    assert_eq!(out, "[Service]\nExecStart=/bin/echo  end\n");
}

#[test]
fn values_that_make_a_line_too_long_for_systemd_are_refused() {
    let big = "x".repeat(600 * 1024);
    let e = refused(
        "a.service",
        "[Service]\nExecStart=/bin/echo {{ a | exec_arg }} {{ b | exec_arg }}\n",
        &json!({"a": big, "b": big}),
    );
    assert!(e.contains("longer than the 1 MiB"), "{e}");
}

#[test]
fn a_value_cannot_become_the_executables_prefix_or_a_separator() {
    for first in ["-/bin/false", ";", ":/bin/x", "@/bin/x"] {
        let e = refused(
            "a.service",
            "[Service]\nExecStart={{ args | exec_arg }} x\n",
            &json!({ "args": [first] }),
        );
        assert!(e.contains("ExecStart"), "{first}: {e}");
    }
    // As a later argument the same values are plain text.
    render(
        "a.service",
        "[Service]\nExecStart=/bin/echo {{ args | exec_arg }}\n",
        &json!({"args": ["-/bin/false", ";", ":/bin/x", "@/bin/x"]}),
    )
    .unwrap();
}
