//! Unit tests of the unit-name functions, with vectors from systemd 252's documented behaviour.

use super::*;

fn esc(s: &str) -> String {
    escape(s).into_owned()
}

fn unesc(s: &str) -> Result<String> {
    unescape(s).map(|b| String::from_utf8(b.into_owned()).unwrap())
}

fn pesc(s: &str) -> Result<String> {
    escape_path(s).map(Cow::into_owned)
}

fn punesc(s: &str) -> Result<String> {
    unescape_path(s).map(|b| String::from_utf8(b).unwrap())
}

fn mng(s: &str) -> Result<String> {
    mangle(s).map(Cow::into_owned)
}

#[test]
fn escape_hex_encodes_everything_outside_the_unit_name_alphabet() {
    assert_eq!(
        esc("ab+-c.a/bc@foo.service"),
        r"ab\x2b\x2dc.a-bc\x40foo.service"
    );
    assert_eq!(esc("foo bar\\"), r"foo\x20bar\x5c");
    assert_eq!(esc("fü"), r"f\xc3\xbc");
    assert_eq!(escape(b"\xff\x00\n".as_slice()), r"\xff\x00\x0a");
}

#[test]
fn escape_protects_only_the_very_first_dot() {
    assert_eq!(esc(""), "");
    assert_eq!(esc("."), r"\x2e");
    assert_eq!(esc(".."), r"\x2e.");
    assert_eq!(esc("/.foo"), "-.foo");
    assert_eq!(esc("a.b"), "a.b");
}

#[test]
fn escape_borrows_when_nothing_changes() {
    assert!(matches!(escape("plain_name:1.2"), Cow::Borrowed(_)));
    assert!(matches!(escape("a/b"), Cow::Owned(_)));
}

#[test]
fn unescape_decodes_hex_and_dashes() {
    assert_eq!(unesc(r"ab\x2b\x2dc.a-bc\x40foo").unwrap(), "ab+-c.a/bc@foo");
    assert_eq!(unesc(r"\X41").unwrap_err(), Error::BadEscape { offset: 0 });
    assert_eq!(unesc(r"\x4A").unwrap(), "J");
    assert!(matches!(unescape("abc").unwrap(), Cow::Borrowed(_)));
}

#[test]
fn unescape_refuses_incomplete_or_unknown_escapes() {
    for bad in [r"\x4", r"a\", r"\\", r"\n", r"\xg0", r"ok\x41\x"] {
        assert!(unescape(bad).is_err(), "{bad}");
    }
    assert_eq!(unesc(r"ab\q").unwrap_err(), Error::BadEscape { offset: 2 });
}

#[test]
fn unescape_truncates_at_a_decoded_nul_but_checks_the_rest() {
    assert_eq!(unesc(r"a\x00b").unwrap(), "a");
    assert!(unescape(r"a\x00b\x").is_err());
}

#[test]
fn path_escape_simplifies_then_escapes() {
    for (input, expected) in [
        ("", "-"),
        ("/", "-"),
        ("//", "-"),
        ("/.", "-"),
        ("/./", "-"),
        ("//foo//bar//", "foo-bar"),
        ("/foo/./bar", "foo-bar"),
        ("/foo/.", "foo"),
        ("foo/bar/", "foo-bar"),
        ("./foo", "foo"),
        ("/.foo", r"\x2efoo"),
        ("/foo/.bar", "foo-.bar"),
        ("/foo bar", r"foo\x20bar"),
        ("/foo-bar", r"foo\x2dbar"),
        ("/foo\\bar", r"foo\x5cbar"),
        ("/fü", r"f\xc3\xbc"),
    ] {
        assert_eq!(pesc(input).as_deref(), Ok(expected), "{input:?}");
    }
}

#[test]
fn path_escape_refuses_what_cannot_be_reversed() {
    let long = format!("/x/{}", "y".repeat(256));
    for bad in [
        "/foo/..",
        "/foo/../bar",
        "//foo/../bar",
        "/../foo",
        "/..",
        ".",
        "..",
        "./",
        long.as_str(),
    ] {
        assert_eq!(pesc(bad), Err(Error::PathNotNormalized), "{bad:?}");
    }
}

#[test]
fn path_unescape_needs_a_normalized_absolute_result() {
    assert_eq!(punesc("-").unwrap(), "/");
    assert_eq!(punesc("foo").unwrap(), "/foo");
    assert_eq!(punesc("foo-bar").unwrap(), "/foo/bar");
    assert_eq!(punesc("foo-.bar").unwrap(), "/foo/.bar");
    assert_eq!(punesc(r"\x00").unwrap(), "/");
    assert_eq!(punesc(""), Err(Error::Empty));
    for bad in [
        "--", "-foo-bar", "foo--bar", "foo-bar-", ".-bar", "foo-..", r"a\x2f",
    ] {
        assert_eq!(punesc(bad), Err(Error::NotAnEscapedPath), "{bad:?}");
    }
}

#[test]
fn validity_follows_the_first_at_and_the_last_dot() {
    use Kind::*;
    assert_eq!(classify(".test.service"), Some(Plain));
    assert_eq!(classify("_strange::::.service"), Some(Plain));
    assert_eq!(classify("foo@.service"), Some(Template));
    assert_eq!(classify("foo@bar@baz.service"), Some(Instance));
    assert_eq!(classify("foo@@.service"), Some(Instance));
    for bad in [
        "",
        ".service",
        "foo",
        "foo.Service",
        "foo.waldo",
        "foo.target.wants/plain.service",
        "foo@%i.service",
        "@x.service",
        "a b.service",
    ] {
        assert_eq!(classify(bad), None, "{bad:?}");
    }
    assert!(is_valid("foo@.service", Kinds::TEMPLATE));
    assert!(!is_valid("foo@.service", Kinds::INSTANCE | Kinds::PLAIN));
}

#[test]
fn validity_stops_at_255_bytes() {
    let ok = format!("{}.service", "a".repeat(247));
    assert_eq!(ok.len(), 255);
    assert!(is_valid(&ok, Kinds::PLAIN));
    let too_long = format!("{}.service", "a".repeat(248));
    assert!(!is_valid(&too_long, Kinds::ANY));
}

#[test]
fn prefix_instance_and_suffix_have_their_own_alphabets() {
    assert!(is_valid_prefix("a-b\\x20"));
    assert!(!is_valid_prefix("a@b"));
    assert!(!is_valid_prefix(""));
    assert!(is_valid_instance("a@b"));
    assert!(!is_valid_instance(""));
    assert!(!is_valid_instance("a/b"));
    assert!(is_valid_suffix(".automount"));
    assert!(!is_valid_suffix("service"));
    assert!(!is_valid_suffix(".SERVICE"));
}

#[test]
fn instance_and_prefix_extraction() {
    assert_eq!(
        to_instance("foo@bar.baz.service").unwrap(),
        (Kind::Instance, Some("bar.baz"))
    );
    assert_eq!(
        to_instance("foo@.service").unwrap(),
        (Kind::Template, Some(""))
    );
    assert_eq!(to_instance("foo.service").unwrap(), (Kind::Plain, None));
    assert!(to_instance("foo").is_err());
    assert_eq!(to_prefix("foo@bar.service").unwrap(), "foo");
    assert_eq!(to_prefix("foo.bar.service").unwrap(), "foo.bar");
    assert_eq!(template_of("foo@bar@x.socket").unwrap(), "foo@.socket");
    assert!(template_of("foo.service").is_err());
}

#[test]
fn replace_instance_revalidates_the_length() {
    assert_eq!(
        replace_instance("foo@.service", "a-b").unwrap(),
        "foo@a-b.service"
    );
    assert_eq!(
        replace_instance("foo@old.service", "new").unwrap(),
        "foo@new.service"
    );
    assert!(matches!(
        replace_instance("foo@.service", ""),
        Err(Error::InvalidInstance { .. })
    ));
    assert!(matches!(
        replace_instance("foo.service", "x"),
        Err(Error::InvalidName { .. })
    ));
    // "foo@" + 243 + ".service" = 255 bytes.
    assert!(replace_instance("foo@.service", "i".repeat(243).as_str()).is_ok());
    assert_eq!(
        replace_instance("foo@.service", "i".repeat(244).as_str()),
        Err(Error::TooLong { len: 256 })
    );
}

#[test]
fn escape_instance_round_trips_any_id_without_nul() {
    let id = "web/app 1 -ü$%\"'\\";
    let unit = escape_instance("console@.service", id).unwrap();
    assert!(is_valid(&unit, Kinds::INSTANCE));
    assert_eq!(unescape_instance(&unit).unwrap(), id.as_bytes());
    assert_eq!(
        unescape_instance_of("console@.service", &unit).unwrap(),
        id.as_bytes()
    );
    assert!(matches!(
        unescape_instance_of("other@.service", &unit),
        Err(Error::TemplateMismatch { .. })
    ));
    assert!(matches!(
        unescape_instance("console@.service"),
        Err(Error::MissingInstance { .. })
    ));
    assert!(escape_instance("console@x.service", "a").is_err());
    assert!(escape_instance("console@.service", "").is_err());
}

#[test]
fn from_path_hashes_overlong_names_to_exactly_255_bytes() {
    let path = format!("/waldo{}", "a".repeat(246));
    let name = from_path(&path, ".mount").unwrap();
    assert_eq!(name.len(), 255);
    assert!(name.starts_with("waldoaaa"));
    assert!(name.ends_with("_7736d9ed33c2ec55.mount"), "{name}");
    assert!(is_hashed(&name));
    assert!(matches!(to_path(&name), Err(Error::Hashed { .. })));
}

#[test]
fn from_path_and_to_path_round_trip_short_paths() {
    assert_eq!(
        from_path("/home/x y", ".mount").unwrap(),
        r"home-x\x20y.mount"
    );
    assert_eq!(from_path("/", ".mount").unwrap(), "-.mount");
    assert_eq!(to_path(r"home-x\x20y.mount").unwrap(), b"/home/x y");
    assert_eq!(to_path("-.mount").unwrap(), b"/");
    assert!(from_path("/a/../b", ".mount").is_err());
    assert!(from_path("/a", "mount").is_err());
    assert!(!is_hashed("foo.mount"));
}

#[test]
fn from_path_instance_never_hashes() {
    assert_eq!(
        from_path_instance("fsck", "/dev/sda1", ".service").unwrap(),
        r"fsck@dev-sda1.service"
    );
    let long = format!("/{}", "a".repeat(250));
    assert!(matches!(
        from_path_instance("fsck", &long, ".service"),
        Err(Error::TooLong { .. })
    ));
    assert!(from_path_instance("a@b", "/x", ".service").is_err());
}

#[test]
fn mangle_matches_systemctl_for_typical_inputs() {
    for (input, expected) in [
        ("foo.waldo", "foo.waldo.service"),
        (".foo", ".foo.service"),
        ("a b.mount", r"a\x20b.mount"),
        ("foo@", "foo@.service"),
        ("/dev", "dev.mount"),
        ("/sys/x y", r"sys-x\x20y.device"),
        ("/home/../x", "-home-..-x.service"),
        ("./foo", ".-foo.service"),
        ("-", "-.service"),
        ("foo*", r"foo\x2a.service"),
        ("üxknürz.service", r"\xc3\xbcxkn\xc3\xbcrz.service"),
        (
            r"xxx@@@@/////\\\\\yyy.service",
            r"xxx@@@@-----\\\\\yyy.service",
        ),
        (
            "_____##@;;;,,,##----.....service",
            r"_____\x23\x23@\x3b\x3b\x3b\x2c\x2c\x2c\x23\x23----.....service",
        ),
    ] {
        assert_eq!(mng(input).as_deref(), Ok(expected), "{input:?}");
    }
}

#[test]
fn mangle_refuses_what_cannot_become_a_name() {
    assert_eq!(mng(""), Err(Error::Empty));
    assert!(matches!(mng("@foo"), Err(Error::InvalidName { .. })));
    assert!(matches!(mng(&"x".repeat(250)), Err(Error::TooLong { .. })));
    assert!(matches!(
        mangle("ok.service").unwrap(),
        Cow::Borrowed("ok.service")
    ));
}

#[test]
fn unit_types_are_exact_and_case_sensitive() {
    assert_eq!(unit_type("a.automount"), Some(UnitType::Automount));
    assert_eq!(unit_type("a.Mount"), None);
    for t in UnitType::ALL {
        assert_eq!(UnitType::from_bytes(t.as_str().as_bytes()), Some(t));
    }
}
