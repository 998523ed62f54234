//! Kubernetes: an Indexed Job that runs a dist bundle's `validate` in one pod per node
//! (a required pod anti-affinity on the hostname), each writing `<node>.json` to a
//! shared volume for `fleet merge`.

use anyhow::Result;
use serde_json::json;

use crate::error;

pub struct Job<'a> {
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    pub nodes: u32,
    pub image: &'a str,
    /// The dist bundle's folder inside the image.
    pub bundle: &'a str,
    /// `nvidia.com/gpu` per pod; none asks for no GPU (CPU-only validation).
    pub gpus: Option<u32>,
    /// A ReadWriteMany PersistentVolumeClaim the reports are written to.
    pub claim: &'a str,
    /// A claim holding the dist bundle, mounted read-only at `bundle` (else the image has it).
    pub bundle_claim: Option<&'a str>,
    pub validate: Vec<String>,
}

/// A DNS-1123 label (Job, namespace and claim names).
fn dns_label(flag: &str, v: &str) -> Result<()> {
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !v.starts_with('-')
        && !v.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(error::usage(format!(
            "{flag} {v:?}: Kubernetes needs a DNS label (lowercase letters, digits and '-', at most 63)"
        )))
    }
}

impl Job<'_> {
    /// Names that Kubernetes accepts, an image, and an absolute bundle path.
    fn check(&self) -> Result<()> {
        dns_label("--job-name", self.name)?;
        dns_label("--claim", self.claim)?;
        if let Some(ns) = self.namespace {
            dns_label("--namespace", ns)?;
        }
        if let Some(c) = self.bundle_claim {
            dns_label("--bundle-claim", c)?;
        }
        if self.image.trim().is_empty() || self.image.contains(char::is_whitespace) {
            return Err(error::usage(format!(
                "--image {:?}: give an image reference that holds the dist bundle",
                self.image
            )));
        }
        if !self.bundle.starts_with('/') {
            return Err(error::usage(format!(
                "--bundle {}: inside the image the bundle needs an absolute path",
                self.bundle
            )));
        }
        Ok(())
    }

    pub fn manifest(&self) -> Result<String> {
        self.check()?;
        let labels = json!({
            "app.kubernetes.io/name": "llmstudio-xtask-fleet",
            "app.kubernetes.io/instance": self.name,
        });
        let mut command = vec![
            format!("{}/bin/xtask", self.bundle.trim_end_matches('/')),
            "validate".into(),
        ];
        command.extend(self.validate.iter().cloned());
        command.extend(["--output".into(), "/reports/{node}.json".into()]);
        let mut container = json!({
            "name": "validate",
            "image": self.image,
            "command": command,
            "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
            "volumeMounts": [{"name": "reports", "mountPath": "/reports"}],
        });
        let mut pod = json!({
            "restartPolicy": "Never",
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": {"matchLabels": labels.clone()},
                "topologyKey": "kubernetes.io/hostname",
            }]}},
            "containers": [],
            "volumes": [{"name": "reports", "persistentVolumeClaim": {"claimName": self.claim}}],
        });
        if let Some(k) = self.gpus {
            container["resources"] = json!({"limits": {"nvidia.com/gpu": k}});
            pod["tolerations"] = json!([{
                "key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule",
            }]);
        }
        if let Some(c) = self.bundle_claim {
            container["volumeMounts"]
                .as_array_mut()
                .expect("a list")
                .push(json!({"name": "bundle", "mountPath": self.bundle, "readOnly": true}));
            pod["volumes"].as_array_mut().expect("a list").push(
                json!({"name": "bundle", "persistentVolumeClaim": {"claimName": c, "readOnly": true}}),
            );
        }
        pod["containers"] = json!([container]);
        let mut metadata = json!({
            "name": self.name,
            "labels": labels.clone(),
            "annotations": {"llmstudio-xtask/about": ABOUT},
        });
        if let Some(ns) = self.namespace {
            metadata["namespace"] = json!(ns);
        }
        let job = json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": metadata,
            "spec": {
                "completionMode": "Indexed",
                "completions": self.nodes,
                "parallelism": self.nodes,
                "backoffLimit": 0,
                "template": {"metadata": {"labels": labels}, "spec": pod},
            },
        });
        // kubectl reads JSON as it reads YAML; JSON needs no emitter of its own.
        Ok(serde_json::to_string_pretty(&job).expect("a JSON value") + "\n")
    }
}

/// What the manifest is, on the Job itself (JSON has no comments).
const ABOUT: &str = "Validates one node per pod with the llmstudio-xtask dist bundle; each pod \
writes /reports/<node>.json to the claim; then `bin/xtask fleet merge <the claim's folder>`. \
Written by `cargo xtask fleet render --scheduler kubernetes`.";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn job() -> Job<'static> {
        Job {
            name: "xtask-fleet",
            namespace: Some("gpu-burnin"),
            nodes: 4,
            image: "registry.example/llmstudio-xtask:cuda",
            bundle: "/opt/llmstudio-xtask",
            gpus: Some(4),
            claim: "fleet-reports",
            bundle_claim: None,
            validate: vec!["--level".into(), "2".into()],
        }
    }

    #[test]
    fn an_indexed_job_with_one_pod_per_node() {
        let m: Value = serde_json::from_str(&job().manifest().unwrap()).unwrap();
        assert_eq!(m["kind"], "Job");
        assert_eq!(m["metadata"]["namespace"], "gpu-burnin");
        let spec = &m["spec"];
        assert_eq!(spec["completionMode"], "Indexed");
        assert_eq!(spec["completions"], 4);
        assert_eq!(spec["parallelism"], 4);
        let pod = &spec["template"]["spec"];
        let anti = &pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            [0];
        assert_eq!(anti["topologyKey"], "kubernetes.io/hostname");
        assert_eq!(
            anti["labelSelector"]["matchLabels"],
            spec["template"]["metadata"]["labels"]
        );
        let c = &pod["containers"][0];
        assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"], 4);
        assert_eq!(c["command"][0], "/opt/llmstudio-xtask/bin/xtask");
        assert_eq!(
            c["command"].as_array().unwrap().last().unwrap(),
            "/reports/{node}.json"
        );
        assert_eq!(c["env"][0]["name"], "NODE_NAME");
        assert_eq!(
            pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "fleet-reports"
        );
        assert_eq!(pod["volumes"].as_array().unwrap().len(), 1);
        let m: Value = serde_json::from_str(
            &Job {
                bundle_claim: Some("llmstudio-xtask"),
                gpus: None,
                ..job()
            }
            .manifest()
            .unwrap(),
        )
        .unwrap();
        let pod = &m["spec"]["template"]["spec"];
        let bundle = &pod["volumes"][1]["persistentVolumeClaim"];
        assert_eq!(bundle["claimName"], "llmstudio-xtask");
        assert_eq!(bundle["readOnly"], true);
        assert!(pod["containers"][0].get("resources").is_none(), "{m}");
        assert!(pod.get("tolerations").is_none(), "{m}");
    }

    #[test]
    fn names_kubernetes_refuses_are_refused_here() {
        let e = Job {
            name: "Fleet_1",
            ..job()
        }
        .manifest()
        .unwrap_err();
        assert!(e.to_string().starts_with("--job-name \"Fleet_1\""), "{e}");
        let e = Job {
            bundle: "opt/x",
            ..job()
        }
        .manifest()
        .unwrap_err();
        assert!(e.to_string().starts_with("--bundle opt/x"), "{e}");
    }
}
