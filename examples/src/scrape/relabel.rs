//! Prometheus relabelling (`relabel_configs`, `metric_relabel_configs`,
//! `write_relabel_configs`): replace, keep, drop, keepequal, dropequal,
//! hashmod, labelmap, labeldrop, labelkeep, lowercase, uppercase.

use model::{Labels, LabelsBuilder};
use serde::Deserialize;

/// One relabel rule, as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator` as the input.
    #[serde(default)]
    pub source_labels: Vec<String>,
    /// Joins source values (default `;`).
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Fully anchored regex (default `(.*)`).
    #[serde(default = "default_regex")]
    pub regex: String,
    /// For hashmod.
    #[serde(default)]
    pub modulus: u64,
    /// The label written by replace/hashmod/lowercase/uppercase.
    #[serde(default)]
    pub target_label: String,
    /// Replacement with `$1`, `${name}` references (default `$1`).
    #[serde(default = "default_replacement")]
    pub replacement: String,
    /// The action (default replace).
    #[serde(default)]
    pub action: Action,
    #[serde(skip)]
    compiled: Option<regex::Regex>,
}

/// Relabel actions.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Write `replacement` (expanded) to `target_label` when the regex matches.
    #[default]
    Replace,
    /// Drop the series unless the regex matches.
    Keep,
    /// Drop the series when the regex matches.
    Drop,
    /// Keep when the joined source equals `target_label`'s value.
    Keepequal,
    /// Drop when the joined source equals `target_label`'s value.
    Dropequal,
    /// Write hash(source) % modulus to `target_label`.
    Hashmod,
    /// Copy labels whose names match to the expanded replacement name.
    Labelmap,
    /// Remove labels whose names match.
    Labeldrop,
    /// Remove labels whose names do not match.
    Labelkeep,
    /// Write the lowercased source to `target_label`.
    Lowercase,
    /// Write the uppercased source to `target_label`.
    Uppercase,
}

fn default_separator() -> String {
    ";".into()
}

fn default_regex() -> String {
    "(.*)".into()
}

fn default_replacement() -> String {
    "$1".into()
}

impl RelabelConfig {
    /// Checks the rule, returning a message about the first problem.
    pub fn validate(&self) -> Result<(), String> {
        self.regex()?;
        let needs_target = matches!(
            self.action,
            Action::Replace | Action::Hashmod | Action::Lowercase | Action::Uppercase | Action::Keepequal | Action::Dropequal
        );
        if needs_target && self.target_label.is_empty() {
            return Err(format!("relabel action {:?} requires a target_label", self.action));
        }
        if self.action == Action::Hashmod && self.modulus == 0 {
            return Err("relabel action hashmod requires a non-zero modulus".into());
        }
        Ok(())
    }

    fn regex(&self) -> Result<regex::Regex, String> {
        regex::Regex::new(&format!("^(?s:{})$", self.regex))
            .map_err(|e| format!("invalid regex {:?}: {e}", self.regex))
    }

    /// Compiles the regex once; call before applying many times.
    pub fn compile(&mut self) -> Result<(), String> {
        self.validate()?;
        self.compiled = Some(self.regex()?);
        Ok(())
    }
}

/// Applies rules in order. Returns `None` when the series is dropped.
/// Rules that were not compiled are compiled on the fly (slower).
pub fn relabel(labels: &Labels, rules: &[RelabelConfig]) -> Option<Labels> {
    if rules.is_empty() {
        return Some(labels.clone());
    }
    let mut b = labels.builder();
    for rule in rules {
        let owned;
        let re = match &rule.compiled {
            Some(r) => r,
            None => {
                owned = rule.regex().ok()?;
                &owned
            }
        };
        if !apply(&mut b, rule, re) {
            return None;
        }
    }
    let out = b.build().without_empty();
    Some(out)
}

fn apply(b: &mut LabelsBuilder, rule: &RelabelConfig, re: &regex::Regex) -> bool {
    let value: String = rule
        .source_labels
        .iter()
        .map(|n| b.get(n).unwrap_or(""))
        .collect::<Vec<_>>()
        .join(&rule.separator);
    match rule.action {
        Action::Keep => re.is_match(&value),
        Action::Drop => !re.is_match(&value),
        Action::Keepequal => b.get(&rule.target_label).unwrap_or("") == value,
        Action::Dropequal => b.get(&rule.target_label).unwrap_or("") != value,
        Action::Replace => {
            if let Some(caps) = re.captures(&value) {
                let mut target = String::new();
                caps.expand(&rule.target_label, &mut target);
                let mut repl = String::new();
                caps.expand(&rule.replacement, &mut repl);
                if model::is_valid_label_name(&target) {
                    if repl.is_empty() {
                        b.del(&target);
                    } else {
                        b.set(target, repl);
                    }
                }
            }
            true
        }
        Action::Lowercase => {
            b.set(rule.target_label.clone(), value.to_lowercase());
            true
        }
        Action::Uppercase => {
            b.set(rule.target_label.clone(), value.to_uppercase());
            true
        }
        Action::Hashmod => {
            // Prometheus hashes with MD5 and takes the low 8 bytes; any
            // stable hash spreads targets the same way in spirit, but the
            // exact shard numbers differ from Prometheus's.
            let h = Labels::from_pairs([("v", value.as_str())]).stable_hash();
            b.set(rule.target_label.clone(), (h % rule.modulus).to_string());
            true
        }
        Action::Labelmap => {
            let current = b.build();
            for l in current.iter() {
                if let Some(caps) = re.captures(&l.name) {
                    let mut name = String::new();
                    caps.expand(&rule.replacement, &mut name);
                    b.set(name, l.value.clone());
                }
            }
            true
        }
        Action::Labeldrop | Action::Labelkeep => {
            let current = b.build();
            for l in current.iter() {
                let m = re.is_match(&l.name);
                if (rule.action == Action::Labeldrop) == m {
                    b.del(&l.name);
                }
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> Vec<RelabelConfig> {
        let mut r: Vec<RelabelConfig> = serde_yaml::from_str(yaml).unwrap();
        for x in &mut r {
            x.compile().unwrap();
        }
        r
    }

    #[test]
    fn keep_drop_replace() {
        let l = Labels::from_pairs([("__name__", "go_gc"), ("job", "n"), ("instance", "h:9100")]);
        assert!(relabel(&l, &rules("- {source_labels: [__name__], regex: 'go_.*', action: drop}")).is_none());
        assert!(relabel(&l, &rules("- {source_labels: [__name__], regex: 'go_.*', action: keep}")).is_some());
        let out = relabel(
            &l,
            &rules("- {source_labels: [instance], regex: '(.*):\\d+', target_label: host, replacement: '$1'}"),
        )
        .unwrap();
        assert_eq!(out.get("host"), Some("h"));
        // Anchored: a partial match does not count.
        assert!(relabel(&l, &rules("- {source_labels: [__name__], regex: 'go', action: keep}")).is_none());
    }

    #[test]
    fn label_actions() {
        let l = Labels::from_pairs([("__meta_x", "1"), ("a", "B"), ("tmp_y", "2")]);
        let out = relabel(&l, &rules("- {regex: '__meta_(.*)', action: labelmap}\n- {regex: 'tmp_.*', action: labeldrop}")).unwrap();
        assert_eq!(out.get("x"), Some("1"));
        assert_eq!(out.get("tmp_y"), None);
        let out = relabel(&l, &rules("- {source_labels: [a], target_label: a_low, action: lowercase}")).unwrap();
        assert_eq!(out.get("a_low"), Some("b"));
        let out = relabel(&l, &rules("- {regex: 'a', action: labelkeep}")).unwrap();
        assert_eq!(out.len(), 1);
        let out = relabel(&l, &rules("- {source_labels: [a], target_label: shard, modulus: 4, action: hashmod}")).unwrap();
        assert!(out.get("shard").unwrap().parse::<u64>().unwrap() < 4);
    }

    #[test]
    fn invalid_rules_are_reported() {
        let r: Vec<RelabelConfig> = serde_yaml::from_str("- {regex: '(', action: keep}").unwrap();
        assert!(r[0].validate().unwrap_err().contains("invalid regex"));
        let r: Vec<RelabelConfig> = serde_yaml::from_str("- {action: replace}").unwrap();
        assert!(r[0].validate().is_err());
    }
}
