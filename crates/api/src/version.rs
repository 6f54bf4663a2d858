//! What a user writes as `spec.engine.version`, matched against the
//! versions on offer. Engine operators offer their own builds of an
//! upstream release (Percona's `8.0.36-28.1` of MySQL `8.0.36`, `7.0.12-7`
//! of MongoDB `7.0.12`): a user who writes the upstream version gets the
//! one build of it, and anything else gets the nearest offered versions
//! named. The operator and the REST API both judge with this.

use std::cmp::Ordering;

/// How a requested version matches the offered ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionMatch {
    /// Offered as written.
    Exact(String),
    /// An upstream version with exactly one build on offer.
    Build(String),
    /// An upstream version with several builds on offer, newest first.
    Ambiguous(Vec<String>),
    /// Not offered: the nearest offered versions, newest first.
    Unknown(Vec<String>),
}

/// The version a request gets under a policy, judged the same way by the
/// operator and the REST API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// The offered, allowed version to run.
    Use(String),
    /// Offered, but the policy does not allow it.
    NotAllowed(String),
    /// An upstream version with several allowed builds, newest first.
    Ambiguous(Vec<String>),
    /// Not offered at all.
    NotOffered,
}

/// Chooses among `offered` (each with whether the policy allows it) for
/// `requested`: the version as written; else the one build of it, taking
/// only allowed builds when it has several.
pub fn choose(requested: &str, offered: &[(&str, bool)]) -> Choice {
    let allowed = |version: &str| offered.iter().any(|(v, a)| *v == version && *a);
    let judged = |version: &str| {
        if allowed(version) {
            Choice::Use(version.to_owned())
        } else {
            Choice::NotAllowed(version.to_owned())
        }
    };
    match match_version(requested, offered.iter().map(|(v, _)| *v)) {
        VersionMatch::Exact(v) | VersionMatch::Build(v) => judged(&v),
        VersionMatch::Ambiguous(builds) => {
            let permitted: Vec<String> = builds.iter().filter(|b| allowed(b)).cloned().collect();
            match permitted.as_slice() {
                [one] => Choice::Use(one.clone()),
                [] => Choice::NotAllowed(builds[0].clone()),
                _ => Choice::Ambiguous(permitted),
            }
        }
        VersionMatch::Unknown(_) => Choice::NotOffered,
    }
}

/// The offered versions nearest to `requested` (sharing the most leading
/// parts, at least the major), newest first; the newest when none shares.
pub fn nearest_versions<'a>(
    requested: &str,
    offered: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    owned(nearest(requested, offered))
}

/// How many near versions an answer names.
const NEAREST: usize = 5;

/// Matches `requested` against `offered`.
pub fn match_version<'a>(
    requested: &str,
    offered: impl IntoIterator<Item = &'a str> + Clone,
) -> VersionMatch {
    if offered.clone().into_iter().any(|v| v == requested) {
        return VersionMatch::Exact(requested.to_owned());
    }
    let build_prefix = format!("{requested}-");
    let mut builds: Vec<&str> = offered
        .clone()
        .into_iter()
        .filter(|v| v.starts_with(&build_prefix))
        .collect();
    builds.sort_by(|a, b| compare(b, a));
    builds.dedup();
    match builds.as_slice() {
        [one] => return VersionMatch::Build((*one).to_owned()),
        [_, _, ..] => return VersionMatch::Ambiguous(owned(builds)),
        [] => {}
    }
    VersionMatch::Unknown(owned(nearest(requested, offered)))
}

/// The offered versions sharing the most leading parts with `requested`
/// (at least the major), newest first; the newest offered when none does.
fn nearest<'a>(requested: &str, offered: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let wanted: Vec<&str> = parts(requested).collect();
    let shared = |v: &str| {
        parts(v)
            .zip(wanted.iter())
            .take_while(|(a, b)| a == *b)
            .count()
    };
    let mut all: Vec<&str> = offered.into_iter().collect();
    all.sort_by(|a, b| compare(b, a));
    all.dedup();
    let best = all.iter().map(|v| shared(v)).max().unwrap_or(0);
    if best == 0 {
        all.truncate(NEAREST);
        return all;
    }
    all.into_iter()
        .filter(|v| shared(v) == best)
        .take(NEAREST)
        .collect()
}

fn parts(version: &str) -> impl Iterator<Item = &str> {
    version.split(['.', '-'])
}

/// Dotted numbers compare as numbers (`17.10` after `17.9`); the rest as
/// text.
pub fn compare(a: &str, b: &str) -> Ordering {
    let key = |v: &str| -> Vec<(u64, String)> {
        parts(v)
            .map(|part| (part.parse().unwrap_or(0), part.to_owned()))
            .collect()
    };
    key(a).cmp(&key(b))
}

fn owned(versions: Vec<&str>) -> Vec<String> {
    versions.into_iter().map(str::to_owned).collect()
}

impl VersionMatch {
    /// The offered version to use, when there is exactly one.
    pub fn resolved(&self) -> Option<&str> {
        match self {
            Self::Exact(v) | Self::Build(v) => Some(v),
            Self::Ambiguous(_) | Self::Unknown(_) => None,
        }
    }

    /// Why `requested` cannot be used, naming the versions to pick from;
    /// `None` when it resolves.
    pub fn refusal(&self, requested: &str) -> Option<String> {
        let quoted = |versions: &[String]| {
            versions
                .iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Self::Exact(_) | Self::Build(_) => None,
            Self::Ambiguous(builds) => Some(format!(
                "{requested:?} has several builds on offer; name one: {}",
                quoted(builds)
            )),
            Self::Unknown(near) if near.is_empty() => {
                Some(format!("{requested:?} is not offered; no version is"))
            }
            Self::Unknown(near) => Some(format!(
                "{requested:?} is not offered; the nearest offered: {}",
                quoted(near)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PXC: [&str; 4] = ["8.4.8-8.1", "8.0.42-33.1", "8.0.36-28.1", "5.7.44-31.65"];

    #[test]
    fn an_offered_version_is_taken_as_written() {
        assert_eq!(
            match_version("8.0.36-28.1", PXC),
            VersionMatch::Exact("8.0.36-28.1".into())
        );
    }

    #[test]
    fn an_upstream_version_resolves_to_its_one_build() {
        let found = match_version("8.0.36", PXC);
        assert_eq!(found, VersionMatch::Build("8.0.36-28.1".into()));
        assert_eq!(found.resolved(), Some("8.0.36-28.1"));
        assert_eq!(
            match_version("7.0.12", ["7.0.12-7", "6.0.16-13"]).resolved(),
            Some("7.0.12-7")
        );
    }

    #[test]
    fn a_prefix_that_is_not_a_whole_release_does_not_match_a_build() {
        // "8.0.3" is not "8.0.36": only "<requested>-<build>" counts.
        assert!(matches!(
            match_version("8.0.3", PXC),
            VersionMatch::Unknown(_)
        ));
    }

    #[test]
    fn several_builds_are_ambiguous_and_named_newest_first() {
        let found = match_version("8.0.36", ["8.0.36-28.1", "8.0.36-28.10", "8.0.36-28.2"]);
        assert_eq!(
            found,
            VersionMatch::Ambiguous(vec![
                "8.0.36-28.10".into(),
                "8.0.36-28.2".into(),
                "8.0.36-28.1".into()
            ])
        );
        assert_eq!(
            found.refusal("8.0.36").unwrap(),
            "\"8.0.36\" has several builds on offer; name one: \"8.0.36-28.10\", \"8.0.36-28.2\", \"8.0.36-28.1\""
        );
    }

    #[test]
    fn an_unknown_version_names_the_nearest_offered() {
        let found = match_version("8.0.99", PXC);
        assert_eq!(
            found,
            VersionMatch::Unknown(vec!["8.0.42-33.1".into(), "8.0.36-28.1".into()])
        );
        assert_eq!(
            found.refusal("8.0.99").unwrap(),
            "\"8.0.99\" is not offered; the nearest offered: \"8.0.42-33.1\", \"8.0.36-28.1\""
        );
        // Nothing shares even the major: the newest offered.
        assert_eq!(
            match_version("12", PXC),
            VersionMatch::Unknown(vec![
                "8.4.8-8.1".into(),
                "8.0.42-33.1".into(),
                "8.0.36-28.1".into(),
                "5.7.44-31.65".into()
            ])
        );
        assert_eq!(
            match_version("1", Vec::<&str>::new()).refusal("1").unwrap(),
            "\"1\" is not offered; no version is"
        );
    }

    #[test]
    fn a_choice_takes_the_allowed_build_and_judges_the_rest() {
        let offered = [
            ("8.0.42-33.1", true),
            ("8.0.42-33.2", false),
            ("8.0.36-28.1", false),
        ];
        assert_eq!(
            choose("8.0.42", &offered),
            Choice::Use("8.0.42-33.1".into())
        );
        assert_eq!(
            choose("8.0.36", &offered),
            Choice::NotAllowed("8.0.36-28.1".into())
        );
        assert_eq!(
            choose("8.0.42-33.2", &offered),
            Choice::NotAllowed("8.0.42-33.2".into())
        );
        assert_eq!(choose("8.0.99", &offered), Choice::NotOffered);
        let both = [("8.0.42-33.1", true), ("8.0.42-33.2", true)];
        assert_eq!(
            choose("8.0.42", &both),
            Choice::Ambiguous(vec!["8.0.42-33.2".into(), "8.0.42-33.1".into()])
        );
        // A version offered as written is never taken for a build.
        let exact = [("17.6", false), ("17.6-1", true)];
        assert_eq!(choose("17.6", &exact), Choice::NotAllowed("17.6".into()));
    }

    #[test]
    fn versions_compare_as_numbers() {
        assert_eq!(compare("17.10", "17.9"), Ordering::Greater);
        assert_eq!(compare("8.0.36-28.10", "8.0.36-28.2"), Ordering::Greater);
    }
}
