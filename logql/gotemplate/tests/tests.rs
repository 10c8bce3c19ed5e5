//! gotemplate from the outside: Go's trimming and comment rules, and
//! properties over arbitrary text (nothing panics, literals read back).

use gotemplate::{format_float, Arity, Env, FuncError, ParseErrorKind, Parser, ParserBuilder, Value};
use proptest::prelude::*;

/// What Go's trim markers remove.
const SPACE: [char; 4] = [' ', '\t', '\r', '\n'];

/// Data with one field, `.s`, and a host function `f` that joins its
/// arguments with `+`.
struct One(Value);

impl Env for One {
    fn field(&self, name: &str) -> Option<Value> {
        Some(if name == "s" { self.0.clone() } else { Value::Nil })
    }

    fn call(&self, _: &str, args: Vec<Value>) -> Result<Value, FuncError> {
        Ok(Value::Str(args.iter().map(Value::to_string).collect::<Vec<_>>().join("+")))
    }
}

fn parser() -> Parser {
    ParserBuilder::new().function("f", Arity::AtLeast(0)).variable("v").build()
}

fn render(src: &str) -> Result<String, String> {
    let t = parser().parse(src).map_err(|e| e.to_string())?;
    t.render(&One(Value::from("str"))).map_err(|e| e.to_string())
}

#[test]
fn trim_markers_as_go_reads_them() {
    assert_eq!(render("a \n{{- 1 }} b").unwrap(), "a1 b");
    assert_eq!(render("a {{-1}} b").unwrap(), "a -1 b");
    assert_eq!(render("a {{ 1 -}}\r\n\t b").unwrap(), "a 1b");
    assert!(render("a {{1-}} b").unwrap_err().contains("bad number syntax: \"-\""));
    assert_eq!(render("x \n\t{{- /* c */ -}}\r\n y").unwrap(), "xy");
    // Only ASCII spaces, tabs and line ends are trimmed.
    assert_eq!(render("a\u{a0}{{- 1 -}}\u{2003}b").unwrap(), "a\u{a0}1\u{2003}b");
    assert_eq!(render("{{- 1 -}}").unwrap(), "1");
    assert_eq!(render("a {{- \" b \" -}} c").unwrap(), "a b c");
}

#[test]
fn comments_as_go_reads_them() {
    assert_eq!(render("a{{/* x }} y */}}b").unwrap(), "ab");
    assert_eq!(render("a{{/* multi\nline */}}b").unwrap(), "ab");
    assert!(render("{{ /* not at the delimiter */ }}").is_err());
    assert!(render("{{/* unclosed }}").unwrap_err().contains("unclosed comment"));
    assert!(render("{{/* x */ }}").unwrap_err().contains("comment ends before closing delimiter"));
    assert!(render("{{-/* x */}}").is_err());
}

#[test]
fn else_if_chains_pick_the_first_true_branch() {
    for (a, b, want) in [(true, true, "1"), (true, false, "1"), (false, true, "2"), (false, false, "3")] {
        let src = format!("{{{{ if {a} }}}}1{{{{ else if {b} }}}}2{{{{ else }}}}3{{{{ end }}}}");
        assert_eq!(render(&src).unwrap(), want, "{src}");
    }
    let long = format!("{{{{ if false }}}}x{}{{{{ else }}}}e{{{{ end }}}}", "{{ else if false }}".repeat(500));
    assert_eq!(render(&long).unwrap(), "e");
}

#[test]
fn deep_or_long_input_fails_cleanly() {
    let deep = "{{ if 1 }}".repeat(10_000);
    assert!(matches!(parser().parse(&deep).unwrap_err().kind(), ParseErrorKind::TooDeep(100)));
    let parens = format!("{{{{ {}1{} }}}}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(matches!(parser().parse(&parens).unwrap_err().kind(), ParseErrorKind::TooDeep(100)));
    let huge = "x".repeat((1 << 20) + 1);
    assert!(matches!(parser().parse(&huge).unwrap_err().kind(), ParseErrorKind::TooLong(_)));
    let nested = "{{ range 1000 }}{{ range 1000 }}{{ range 1000 }}{{ end }}{{ end }}{{ end }}";
    assert!(render(nested).unwrap_err().contains("steps"));
    assert!(render("{{ printf \"%999999d\" 1 }}{{ printf \"%999999d\" 1 }}").is_ok());
}

/// Pieces of template syntax, for text that reaches deep into the parser.
fn fragments() -> impl Strategy<Value = String> {
    const PIECES: &[&str] = &[
        "{{",
        "}}",
        "{{- ",
        " -}}",
        "if ",
        "else ",
        "else if ",
        "end",
        "range ",
        "with ",
        "$x",
        "$",
        ":=",
        " = ",
        ".s",
        ".",
        "|",
        "(",
        ")",
        "\"s\"",
        "`r`",
        "'c'",
        "1",
        "-2.5",
        "0x1f",
        "nil",
        "true",
        "f",
        "printf \"%d\" ",
        "eq ",
        "and ",
        "or ",
        "not ",
        "index ",
        "len ",
        "print ",
        "/*",
        "*/",
        ",",
        " ",
        "\n",
        "é",
        "$v",
        "$i, $e := ",
        "\\",
        "}",
        "{",
    ];
    prop::collection::vec(prop::sample::select(PIECES), 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_and_execute_never_panic(src in prop_oneof![fragments(), "\\PC{0,60}", "[{}$. a-z|()\"'`:=0-9/*-]{0,60}"]) {
        if let Ok(t) = parser().parse(&src) {
            let _ = t.render(&One(Value::List(vec![Value::Int(1), Value::from("a")])));
            let _ = t.render(&One(Value::Nil));
        }
    }

    #[test]
    fn text_without_actions_is_verbatim(s in "\\PC{0,80}") {
        prop_assume!(!s.contains("{{"));
        prop_assert_eq!(render(&s).unwrap(), s);
    }

    #[test]
    fn trim_markers_remove_ascii_space_next_to_them(
        l in "[a-z \t\r\n\u{a0}]{0,12}",
        r in "[a-z \t\r\n\u{a0}]{0,12}",
        left: bool,
        right: bool,
    ) {
        let src = format!("{l}{{{{{}\"v\"{}}}}}{r}", if left { "- " } else { " " }, if right { " -" } else { " " });
        let want = format!(
            "{}v{}",
            if left { l.trim_end_matches(SPACE) } else { &l },
            if right { r.trim_start_matches(SPACE) } else { &r },
        );
        prop_assert_eq!(render(&src).unwrap(), want);
    }

    #[test]
    fn comments_vanish_with_their_trim_markers(
        l in "[a-z \t\n]{0,12}",
        c in "\\PC{0,20}",
        r in "[a-z \t\n]{0,12}",
        left: bool,
        right: bool,
    ) {
        prop_assume!(!c.contains("*/"));
        let src = format!("{l}{{{{{}/*{c}*/{}}}}}{r}", if left { "- " } else { "" }, if right { " -" } else { "" });
        let want = format!(
            "{}{}",
            if left { l.trim_end_matches(SPACE) } else { &l },
            if right { r.trim_start_matches(SPACE) } else { &r },
        );
        prop_assert_eq!(render(&src).unwrap(), want);
    }

    #[test]
    fn quoted_strings_read_back(s in "\\PC{0,40}|[\\x00-\\x1f\"\\\\'`]{0,10}") {
        let t = parser().parse("{{ printf \"%q\" .s }}").unwrap();
        let quoted = t.render(&One(Value::from(s.as_str()))).unwrap();
        let back = parser().parse(&format!("{{{{ {quoted} }}}}")).unwrap().render(&One(Value::Nil)).unwrap();
        prop_assert_eq!(back, s);
    }

    #[test]
    fn integers_and_floats_print_as_written(i: i64, f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
        prop_assert_eq!(render(&format!("{{{{ {i} }}}}")).unwrap(), i.to_string());
        // `-0` reads back as the integer 0, as in Go.
        let g = format_float(if f == 0.0 { 0.0 } else { f }, 'g', None);
        prop_assert_eq!(render(&format!("{{{{ {g} }}}}")).unwrap(), g);
    }
}
