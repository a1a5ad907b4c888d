/**
 * Every real fixture (../shared/fixtures/real, see its CATALOG.md) through `tree`, `inspect` and
 * `verify`: one named row per fixture with what a correct reader must say about it. Then, per
 * fixture kind, damaged copies (one flipped byte in a manifest, a config, a layer; the archive
 * cut short at several offsets) must make berth fail cleanly: exit 1, the blob named, no stack.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertCleanError, berth, fixture, json, realFixtures, short, STACK_LINE, type CliResult } from './support/cli.js';
import {
  copyFixture, flipInArchive, flipInFile, memberBytes, readTar, removeDir, sha256, tarMembers, tempDir, truncateAt,
} from './support/tamper.js';

interface TreeJson {
  format: string;
  notes: string[];
  tree: TreeNodeJson;
}
interface TreeNodeJson {
  role: string;
  digest?: string;
  names?: string[];
  error?: string;
  children: TreeNodeJson[];
}
interface InspectJson {
  digest: string;
  configDigest: string;
  platform?: string;
  names: string[];
  layers: unknown[];
  kind?: string;
}
interface VerifyJson {
  ok: boolean;
  problems: Array<{ severity: 'error' | 'warning'; subject: string; message: string }>;
}

/** What `inspect` must print for the row's image (with `ref` appended to the path when set). */
interface InspectOk {
  readonly ref?: string;
  readonly digest: string;
  readonly config: string;
  readonly platform?: string | null;
  readonly names?: readonly string[];
  readonly layers: number;
  /** `artifact` for manifests that are not runnable images (inspect says so and still summarises them) */
  readonly kind?: 'image' | 'artifact';
}
/** `inspect` must refuse, exit 1, with this fragment in its one-line error. */
interface InspectRejected {
  readonly ref?: string;
  readonly code: 1;
  readonly message: string;
}

interface Row {
  readonly name: string;
  /** relative to fixtures/real */
  readonly path: string;
  /** node:test todo: berth's current behaviour is wrong; the row states the right one */
  readonly todo?: string;
  /** every command refuses the input with this exit code and message fragment */
  readonly reject?: { readonly code: number; readonly message: string };
  /** `tree`: the format berth detects and the number of roots under the entry point */
  readonly tree?: { readonly format: string; readonly roots: number; readonly names?: readonly string[]; readonly errors?: number };
  readonly inspect?: InspectOk | InspectRejected;
  /** `verify`: exit code, and optionally error/warning counts and text every problem list must contain */
  readonly verify?: {
    readonly code: 0 | 1;
    readonly errors?: number;
    readonly warnings?: number;
    readonly mentions?: readonly string[];
    readonly never?: RegExp;
  };
}

const NOT_AN_IMAGE = 'is not an image archive';
const EMPTY = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

const ROWS: readonly Row[] = [
  // ---- wagoodman/dive
  {
    name: 'dive legacy docker save, 14 layers',
    path: 'wagoodman__dive/.data/test-docker-image.tar',
    tree: { format: 'docker-archive', roots: 1, names: ['dive-test:latest'] },
    inspect: { digest: 'sha256:866b9e41fa2bf9e69cb0c136dcd6d594c346a3cf0fed2221fc0bf98f54148d92', config: 'sha256:75ae28b8ebf89b203319069ddcbecdf5c3838503bbebc0d0d85e4b8589c5de3a', platform: 'linux/amd64', names: ['dive-test:latest'], layers: 14 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    name: 'dive kaniko ggcr-tarball (gzip layers, config named sha256:…)',
    path: 'wagoodman__dive/.data/test-kaniko-image.tar',
    tree: { format: 'docker-archive', roots: 1, names: ['dive-test:kaniko-latest'] },
    inspect: { digest: 'sha256:4afb546e6b157a392ade59391e416d14b644f57d8611cf14f417931760dc1168', config: 'sha256:ae16a51058a758c7963b2f9b23d1acfa201ce9cbefc8cb93845f8cd934fb144d', platform: 'linux/amd64', names: ['dive-test:kaniko-latest'], layers: 14 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    name: 'dive buildx oci gzip',
    path: 'wagoodman__dive/.data/test-oci-gzip-image.tar',
    tree: { format: 'oci-layout', roots: 1 },
    inspect: { digest: 'sha256:7d255e9e3d216a9a92a5c1ce0563a5ddd92f28a34a9df025d3cf8dfa5ea08366', config: 'sha256:3eaccc100f866490f00ae82727b459a737af031dcf44c791d8aa714a70f24959', platform: 'linux/arm64', layers: 1 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    name: 'dive buildx oci zstd (real zstd layer)',
    path: 'wagoodman__dive/.data/test-oci-zstd-image.tar',
    tree: { format: 'oci-layout', roots: 1 },
    inspect: { digest: 'sha256:f5e3515f39a16543547c03d03ec34faf9276742e6ce7c7dd6e467a14e90b29fc', config: 'sha256:3eaccc100f866490f00ae82727b459a737af031dcf44c791d8aa714a70f24959', platform: 'linux/arm64', layers: 1 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    name: 'dive buildx oci estargz',
    path: 'wagoodman__dive/.data/test-oci-estargz-image.tar',
    tree: { format: 'oci-layout', roots: 1 },
    inspect: { digest: 'sha256:2e75eb783d1a845ce3846d1a7da4453f825886aab5b3ad03afcec7730a208c4d', config: 'sha256:5c153971f5feeb018fab88c379f94ef9171ba1990163d32852fd27bf55ed5b74', platform: 'linux/arm64', layers: 1 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    name: 'dive buildx oci uncompressed (config shared with gzip/zstd)',
    path: 'wagoodman__dive/.data/test-oci-uncompressed-image.tar',
    tree: { format: 'oci-layout', roots: 1 },
    inspect: { digest: 'sha256:5cec6b4ce61c35c3a83e09d72d81a335b49fdcef727beee160d12eeaf066f11b', config: 'sha256:3eaccc100f866490f00ae82727b459a737af031dcf44c791d8aa714a70f24959', platform: 'linux/arm64', layers: 1 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    name: 'dive type=tar export: a root file system, not an image',
    path: 'wagoodman__dive/.data/test-zstd-image.tar',
    reject: { code: 1, message: NOT_AN_IMAGE },
  },

  // ---- regclient/regclient
  {
    name: 'regclient testrepo (referrers, cycle, 26 index entries)',
    path: 'regclient__regclient/testdata/testrepo',
    // 26 entries; referrers (subject) and fallback-tag indexes (`sha256-<hex>`) hang under their subject
    tree: { format: 'oci-layout', roots: 13, errors: 0 },
    inspect: { ref: ':v1', digest: 'sha256:1effc9d48232693f4584ceb9c5e8d84ddeb5924ea4aff341aa8204510422f668', config: 'sha256:03d7b3c657a4af5b4ff7967bf843d04a93008f28d658a7df3f679b2c7e519639', platform: 'linux/amd64', names: ['v1'], layers: 2 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    name: 'regclient external (referrers whose subject lives elsewhere)',
    path: 'regclient__regclient/testdata/external',
    tree: { format: 'oci-layout', roots: 3, errors: 0 },
    inspect: { ref: ':a3', digest: 'sha256:30cc0c708132298dd05b03e22eab4ecf99aa0ed0ce9c4904c2b5895707381576', config: EMPTY, names: ['a3'], layers: 1 },
    verify: { code: 0, errors: 0, warnings: 2, mentions: ['subject sha256:dfae8f425735 is not stored here'] },
  },
  {
    name: 'regclient layer.tar: a single layer, not an image',
    path: 'regclient__regclient/testdata/layer.tar',
    reject: { code: 1, message: NOT_AN_IMAGE },
  },
  {
    name: 'regclient layer-wh.tar: a single layer with whiteouts, not an image',
    path: 'regclient__regclient/testdata/layer-wh.tar',
    reject: { code: 1, message: NOT_AN_IMAGE },
  },

  // ---- google/go-containerregistry
  {
    name: 'ggcr hello-world-v25: Docker 25 save, untagged, "manifests": null',
    path: 'google__go-containerregistry/pkg/v1/tarball/testdata/hello-world-v25.tar',
    tree: { format: 'docker-archive-oci', roots: 1 },
    inspect: { digest: 'sha256:22da013ffa1abb79753d1d2cbf79fe598b626eb0a772738073d617be5b71b872', config: 'sha256:ee301c921b8aadc002973b2e0c3da17d701dcd994b606769a7e6eaa100b81d44', platform: 'linux/arm64', names: [], layers: 1 },
    verify: { code: 0, errors: 0 },
  },
  {
    name: 'ggcr test_link: legacy, 2 images, layer.tar symlink',
    path: 'google__go-containerregistry/pkg/v1/tarball/testdata/test_link.tar',
    tree: { format: 'docker-archive', roots: 2, names: ['bazel/v1/tarball:test_image_1', 'bazel/v1/tarball:test_image_3'] },
    inspect: { ref: ':@1', digest: 'sha256:28799bf9760213b665b935351f4031d8b357f825833b2a74783e45d167802bdf', config: 'sha256:d4c9adacde69c3d92446e0484cea29493e9fd573cf0c8febfc700d80c46697a4', platform: 'linux/amd64', names: ['bazel/v1/tarball:test_image_3'], layers: 2 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    name: 'ggcr test_bundle: LayerSources names a gzip form that is not stored (the tar holds the diff)',
    path: 'google__go-containerregistry/pkg/v1/tarball/testdata/test_bundle.tar',
    tree: { format: 'docker-archive', roots: 2, names: ['test_image_2', 'test_image_1'] },
    inspect: { ref: ':test_image_1', digest: 'sha256:438d524858b5f288a2fe0cf9277e03378b473a6ad716dd50ffe9ac1d10128e90', config: 'sha256:6e0b05049ed9c17d02e1a55e80d6599dbfcce7f4f4b022e3c673e685789c470e', platform: 'linux/amd64', names: ['test_image_1'], layers: 1 },
    verify: { code: 0, errors: 0 },
  },
  {
    name: 'ggcr no_manifest: pre-Docker-1.10 archive',
    path: 'google__go-containerregistry/pkg/v1/tarball/testdata/no_manifest.tar',
    reject: { code: 1, message: 'pre-Docker-1.10' },
  },
  {
    name: 'ggcr null_manifest: manifest.json is null',
    path: 'google__go-containerregistry/pkg/v1/tarball/testdata/null_manifest.tar',
    reject: { code: 1, message: 'manifest.json: is null' },
  },
  {
    name: 'ggcr foreign: foreign layer present in the tar, empty os/arch',
    path: 'google__go-containerregistry/pkg/v1/tarball/testdata/foreign.tar',
    tree: { format: 'docker-archive', roots: 1, names: ['gcr.io/foo/bar:latest'] },
    inspect: { digest: 'sha256:7a6533e7b877abbf2b23ffb42571e876f5d82811fd046fe776d36cde9af0ec78', config: 'sha256:53029f61be64b4c3d4e30d4c15ea49cdbd9514e4fbaa7e8d7c0cff91756b40e7', platform: null, names: ['gcr.io/foo/bar:latest'], layers: 2 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    name: 'ggcr sparse_foreign: the absent foreign layer is explained by its urls, not corruption',
    path: 'google__go-containerregistry/pkg/v1/tarball/testdata/sparse_foreign.tar',
    tree: { format: 'docker-archive', roots: 1, names: ['gcr.io/foo/bar:latest'] },
    inspect: { digest: 'sha256:e74bff2a605a4e642c146ffd5c4f9b8f87efdd752749edf625923f509963c474', config: 'sha256:53029f61be64b4c3d4e30d4c15ea49cdbd9514e4fbaa7e8d7c0cff91756b40e7', platform: null, layers: 2 },
    verify: { code: 0, errors: 0, mentions: ['foreign layer sha256:015b6ec6d1bc'] },
  },
  {
    name: 'ggcr whiteout_dir: ggcr tarball, 4 gzip layers',
    path: 'google__go-containerregistry/pkg/v1/mutate/testdata/whiteout_dir.tar',
    tree: { format: 'docker-archive', roots: 1, names: ['localhost:5000/whiteout:latest'] },
    inspect: { digest: 'sha256:0be818545b24f4c2cb05a89a0c8c4204ad317b8bae541e2262c08b004a6c491b', config: 'sha256:92f1e3d53acdc7e137e73869abc4e87aba6614440a31723423790ca0d5db9111', platform: 'linux/amd64', layers: 4 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    name: 'ggcr whiteout_image: rules_docker, an all-zero layer',
    path: 'google__go-containerregistry/pkg/v1/mutate/testdata/whiteout_image.tar',
    tree: { format: 'docker-archive', roots: 1, names: ['bazel/pkg/v1/mutate:whiteout_image'] },
    inspect: { digest: 'sha256:653cac4d828eafb5a319cbac8bf0026716fa363c1b82d6247d3b93a7496c2929', config: 'sha256:decb630649c3e1256345d416b228d6c3ceb387a55120ad44dc3ec992976d28b9', platform: 'linux/amd64', layers: 3 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    // CATALOG: "negative or lenient-mode fixture". In a legacy archive the config's file name is
    // its only integrity record, so a mismatch is corruption for verify (--strict aside, which
    // turns every warning into an error); reading stays possible (docker load uses the content).
    name: 'ggcr source_image_with_empty_layer_history: config file name is not its digest',
    path: 'google__go-containerregistry/pkg/v1/mutate/testdata/source_image_with_empty_layer_history.tar',
    tree: { format: 'docker-archive', roots: 1, names: ['bazel/pkg/v1/mutate:source_image'] },
    inspect: { digest: 'sha256:aff7f330b93879462d737f2274feef9bba76ec8bd1a865e5c0b26f3e12dd9a0a', config: 'sha256:05b5ec1290589606ce19fabb1fb331f004acd9f618b9b4e813721be1a03a0712', platform: 'linux/amd64', layers: 1 },
    verify: { code: 1, errors: 1, mentions: ['file name says sha256:6e0b05049ed9c17d02e1a55e80d6599dbfcce7f4f4b022e3c673e685789c470e but its content hashes to sha256:05b5ec1290589606ce19fabb1fb331f004acd9f618b9b4e813721be1a03a0712'] },
  },
  {
    // The descriptor/content media-type disagreement is real (a Docker v2 manifest listed as an
    // OCI manifest), so verify fails; but the config and layers that manifest names are not
    // "unreferenced": berth stops at the mismatch and then misreports them.
    name: 'ggcr layout test_index: media types disagree with content',
    path: 'google__go-containerregistry/pkg/v1/layout/testdata/test_index',
    tree: { format: 'oci-layout', roots: 4, names: ['1', '2', '3', '4'] },
    inspect: { ref: ':1', code: 1, message: 'the content says application/vnd.docker.distribution.manifest.v2+json but its descriptor says application/vnd.oci.image.manifest.v1+json' },
    verify: { code: 1, mentions: ['manifest sha256:eebff607b162', 'mediaType'], never: /is not referenced by anything reachable/ },
  },
  {
    name: 'ggcr layout test_index_media_type: helm-chart-like artifact, manifest without mediaType',
    path: 'google__go-containerregistry/pkg/v1/layout/testdata/test_index_media_type',
    tree: { format: 'oci-layout', roots: 1, errors: 0 },
    inspect: { digest: 'sha256:b544f71ecd82372bc9a3c0dbef378abfd2734fe437df81ff6e242a0d720d8e3e', config: 'sha256:ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356', platform: null, layers: 1 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    name: 'ggcr layout test_gc_image_unknown_mediatype: the only blob is missing',
    path: 'google__go-containerregistry/pkg/v1/layout/testdata/test_gc_image_unknown_mediatype',
    tree: { format: 'oci-layout', roots: 1 },
    inspect: { code: 1, message: 'blob sha256:32589985702551b6c56033bb3334432a0a513bf9d6aceda0f67c42b003850720 is missing' },
    verify: { code: 1, errors: 1, mentions: ['sha256:325899857025: is missing'] },
  },

  // ---- containers/image, containers/skopeo
  {
    name: 'containers/image almostempty: smallest legacy archive',
    path: 'containers__image/docker/archive/fixtures/almostempty.tar',
    tree: { format: 'docker-archive', roots: 1, names: ['emptyimage:latest'] },
    inspect: { digest: 'sha256:642b9d39405d219a3c6d9ef9a67a7bdd57f5ed9ca1e561acfb8cc7bad4609976', config: 'sha256:9d7f147c0d0c4d4538a04c7ef385809e56eb1aac7bf800fbe976612188025b68', platform: 'linux/amd64', names: ['emptyimage:latest'], layers: 1 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    name: 'skopeo docker-two-images.tar.xz: xz-compressed legacy archive, 2 images',
    path: 'containers__skopeo/systemtest/testdata/docker-two-images.tar.xz',
    tree: { format: 'docker-archive', roots: 2, names: ['example.com/empty:latest', 'example.com/empty/but:different'] },
    inspect: { ref: ':@1', digest: 'sha256:1bb2bdf06cebf20d6839ea1899a41ed13b042e84713ccd72c367475157a4e47a', config: 'sha256:5a7ef13e1893f2f91d29b3c2b9224e771a57c48ff6fe8d2aee91f3f91062fa2a', platform: 'linux/amd64', names: ['example.com/empty/but:different'], layers: 1 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },

  // ---- docker/actions-toolkit
  {
    name: 'actions-toolkit hello-oci-uncompressed',
    path: 'docker__actions-toolkit/__tests__/.fixtures/oci-archive/hello-oci-uncompressed.tar',
    tree: { format: 'oci-layout', roots: 1 },
    inspect: { digest: 'sha256:0f90b7af6b2fef777963e3e1ca4fd66f378af93f5fe46304886943a4c0c7a46b', config: 'sha256:31fb11342ef44e567c32519f5d6418f558d043626afb9b2a9a46db6f05dfdd9b', platform: 'linux/amd64', layers: 1 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    name: 'actions-toolkit hello-oci-gzip (really uncompressed: same manifest)',
    path: 'docker__actions-toolkit/__tests__/.fixtures/oci-archive/hello-oci-gzip.tar',
    tree: { format: 'oci-layout', roots: 1 },
    inspect: { digest: 'sha256:0f90b7af6b2fef777963e3e1ca4fd66f378af93f5fe46304886943a4c0c7a46b', config: 'sha256:31fb11342ef44e567c32519f5d6418f558d043626afb9b2a9a46db6f05dfdd9b', platform: 'linux/amd64', layers: 1 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    name: 'actions-toolkit hello-oci-zstd (really uncompressed: same manifest)',
    path: 'docker__actions-toolkit/__tests__/.fixtures/oci-archive/hello-oci-zstd.tar',
    tree: { format: 'oci-layout', roots: 1 },
    inspect: { digest: 'sha256:0f90b7af6b2fef777963e3e1ca4fd66f378af93f5fe46304886943a4c0c7a46b', config: 'sha256:31fb11342ef44e567c32519f5d6418f558d043626afb9b2a9a46db6f05dfdd9b', platform: 'linux/amd64', layers: 1 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    // BuildKit's v0.1 provenance has an empty subject: a warning, not corruption.
    name: 'actions-toolkit hello-oci-multiplatform-gzip: 2 platforms + 2 provenance attestations',
    path: 'docker__actions-toolkit/__tests__/.fixtures/oci-archive/hello-oci-multiplatform-gzip.tar',
    tree: { format: 'oci-layout', roots: 1, errors: 0 },
    inspect: { digest: 'sha256:0f90b7af6b2fef777963e3e1ca4fd66f378af93f5fe46304886943a4c0c7a46b', config: 'sha256:31fb11342ef44e567c32519f5d6418f558d043626afb9b2a9a46db6f05dfdd9b', platform: 'linux/amd64', layers: 1 },
    verify: { code: 0, errors: 0, warnings: 2, mentions: ['subject: empty'] },
  },
  {
    name: 'actions-toolkit .dockerbuild: gzip-compressed build record, not an image',
    path: 'docker__actions-toolkit/__tests__/.fixtures/oci-archive/docker~test-docker-action~COIO50.dockerbuild',
    // CATALOG: a reader must not take it for an image: inspect labels it an artifact
    tree: { format: 'oci-layout', roots: 1, errors: 0 },
    inspect: { digest: 'sha256:ae5eb5cef8f241ea0518a4d6831a835b942bd4fc8ae3af8a730461716539b79a', config: 'sha256:063472d6b612b4cfc2a1be73a1e7d86951d31caa28ba27347b46998935a34a20', layers: 2, kind: 'artifact' },
    verify: { code: 0, errors: 0 },
  },

  // ---- snyk/snyk-docker-plugin
  {
    name: 'snyk docker-save hello-world: Docker 25 archive (tagged)',
    path: 'snyk__snyk-docker-plugin/test/fixtures/docker-archives/docker-save/hello-world.tar',
    tree: { format: 'oci-layout', roots: 1, names: ['docker.io/library/hello-world:latest', 'latest'] },
    inspect: { digest: 'sha256:8876a860b8c40b280440ed7678ba677f5a3cb972fddde4198a9a5e159184732f', config: 'sha256:d2c94e258dcb3c5ac2798d32e1249e42ef01cba4841c2234249495f87264ac5a', platform: 'linux/amd64', names: ['docker.io/library/hello-world:latest', 'latest'], layers: 1 },
    // the legacy v1 `json` rides along as an unreferenced blob
    verify: { code: 0, errors: 0, warnings: 1, mentions: ['sha256:b02b598d5d3b: is not referenced'] },
  },
  {
    name: 'snyk docker-oci-archives busybox.armv7: Docker 25 archive, arm/v7',
    path: 'snyk__snyk-docker-plugin/test/fixtures/docker-oci-archives/busybox.armv7.tar',
    tree: { format: 'oci-layout', roots: 1 },
    inspect: { digest: 'sha256:7aabb59a4cd2e069234070f763403f230d03117b93d55ba531952f9f697b19c3', config: 'sha256:74c89ecc3230154ecfcbab950dbf1e19827a6b2a1e95358c9afe9bb97478ad8a', platform: 'linux/arm/v7', layers: 1 },
    verify: { code: 0, errors: 0 },
  },
  {
    name: 'snyk containerd busybox.armv7: sparse 10-platform export',
    path: 'snyk__snyk-docker-plugin/test/fixtures/containerd-archives/busybox.armv7.tar',
    tree: { format: 'oci-layout', roots: 1, names: ['docker.io/library/busybox:latest', 'latest'] },
    inspect: { digest: 'sha256:f0e13015e5579b8b036f19e92e66cff1551fea32e827a2648c1217c4b8f2609c', config: 'sha256:74c89ecc3230154ecfcbab950dbf1e19827a6b2a1e95358c9afe9bb97478ad8a', platform: 'linux/arm/v7', layers: 1 },
    verify: { code: 0, errors: 0, warnings: 19, mentions: ['listed but not present'] },
  },
  {
    name: 'snyk containerd busybox single arch with attestation manifest',
    path: 'snyk__snyk-docker-plugin/test/fixtures/containerd-archives/busybox-single-arch-with-attestation-manifest.tar',
    tree: { format: 'oci-layout', roots: 1, names: ['docker.io/foo/bar:v3', 'v3'] },
    inspect: { digest: 'sha256:cf7d823e4eea96316ae629fb9a45b4211869162a5f5dc1654928c7ca530ed810', config: 'sha256:0f7981b59ce1b84d8ab35f636be2d5a3f94c83a9e1759ae8718f0b415285e402', platform: 'linux/arm64', names: ['docker.io/foo/bar:v3', 'v3'], layers: 1 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    name: 'snyk kaniko-busybox',
    path: 'snyk__snyk-docker-plugin/test/fixtures/kaniko-archives/kaniko-busybox.tar',
    tree: { format: 'docker-archive', roots: 1, names: ['kaniko-busybox:latest'] },
    inspect: { digest: 'sha256:4f819587aa7a88440fbaa6274bb4985b6cb202e7817e9cddbc2d749445e43e2b', config: 'sha256:c5003bd0bae2d0bcb5419307c9cf54264a9e5783626caf218f8aa177173b7cf4', platform: 'linux/amd64', layers: 1 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    name: 'snyk skopeo-copy nodes-fake-multi: <diffid>.tar layers + mode-0000 symlinks, RepoTags []',
    path: 'snyk__snyk-docker-plugin/test/fixtures/docker-archives/skopeo-copy/nodes-fake-multi.tar',
    tree: { format: 'docker-archive', roots: 1 },
    inspect: { digest: 'sha256:a3b3806f5dc2b78c177fa2ca88f840020787edf3a7802057a73b7aa400d07f98', config: 'sha256:c23a5744368857498ede92ce059cbf481800bb870931de9d11dfea764db02889', platform: 'linux/amd64', names: [], layers: 2 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    // Really broken: layer blobs were replaced by stand-ins or left out (CATALOG).
    name: 'snyk oci-with-manifest: gzip OCI archive with replaced and missing layers',
    path: 'snyk__snyk-docker-plugin/test/fixtures/oci-archives/oci-with-manifest.tar',
    tree: { format: 'oci-layout', roots: 1 },
    inspect: { digest: 'sha256:508a46733d7bfcd459d85b2d110570c0facf575f3b1e0dd34aaec4972a3658ca', config: 'sha256:2435e1e8b4b4c9e73a713bfec313cfbe9ced82fe2c798c2ce9b463c314e2473d', platform: 'linux/amd64', layers: 4 },
    verify: { code: 1, errors: 4, mentions: ['layer 0 sha256:23884877105a', 'fewer bytes than the descriptor', 'layer 1 sha256:bc38caa0f5b9 of manifest sha256:508a46733d7b: is missing'] },
  },

  // ---- anchore/stereoscope
  {
    name: 'stereoscope multiplatform_oci_dir: nested index, amd64 + arm64',
    path: 'anchore__stereoscope/pkg/image/oci/testdata/multiplatform_oci_dir',
    tree: { format: 'oci-layout', roots: 1, names: ['docker.io/library/multi-platform:latest', 'latest'] },
    inspect: { digest: 'sha256:e7c26a4b4d156fd9947ee82295b7b78acf7aa54b93b8f3e4b9f608179ffb20e8', config: 'sha256:549248a7ac95478805d9248e4ffdc778fc2404257d8c071848746e0100e08099', platform: 'linux/amd64', layers: 1 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    name: 'stereoscope valid_oci_dir: the same manifest listed twice',
    path: 'anchore__stereoscope/pkg/image/oci/testdata/valid_oci_dir',
    tree: { format: 'oci-layout', roots: 2, names: ['latest', '1.0'] },
    inspect: { ref: ':1.0', digest: 'sha256:c1ed04a3da941a5dd09b58b16c37f065557863d382ef97995ddac885a8452ebb', config: 'sha256:61ee19e869a529075634f762c1eb191962777e0803598758cbf076edfadfb046', platform: 'linux/amd64', names: ['1.0'], layers: 1 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    name: 'stereoscope valid-oci.tar: ref.name "sample:latest"',
    path: 'anchore__stereoscope/pkg/image/oci/testdata/valid-oci.tar',
    tree: { format: 'oci-layout', roots: 1, names: ['sample:latest'] },
    inspect: { digest: 'sha256:c1ed04a3da941a5dd09b58b16c37f065557863d382ef97995ddac885a8452ebb', config: 'sha256:61ee19e869a529075634f762c1eb191962777e0803598758cbf076edfadfb046', platform: 'linux/amd64', names: ['sample:latest'], layers: 1 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },

  // ---- notaryproject/notation
  {
    name: 'notation e2e-valid-signature: signature referrer + fallback tag index',
    path: 'notaryproject__notation/test/e2e/testdata/registry/oci_layout/e2e-valid-signature',
    // the fallback tag index `sha256-<hex>` hangs under the artifact it names
    tree: { format: 'oci-layout', roots: 1, errors: 0 },
    inspect: { ref: ':v1', digest: 'sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9', config: EMPTY, names: ['v1'], layers: 1 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    name: 'notation e2e-with-timestamped-signature: OCI 1.1 artifact + signature',
    path: 'notaryproject__notation/test/e2e/testdata/registry/oci_layout/e2e-with-timestamped-signature',
    tree: { format: 'oci-layout', roots: 1, errors: 0 },
    inspect: { ref: ':v1', digest: 'sha256:53b0191218aed9a3c1f7c661736ac40cfc8eb928642348fd843ba3f0483c0c20', config: EMPTY, names: ['v1'], layers: 1 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },

  // ---- oras-project/oras-go, oras-project/oras
  {
    name: 'oras-go hello-world.tar: containerd archive, Docker manifest list, sparse',
    path: 'oras-project__oras-go/content/oci/testdata/hello-world.tar',
    tree: { format: 'oci-layout', roots: 1, names: ['docker.io/library/hello-world:latest', 'latest'] },
    inspect: { digest: 'sha256:f54a58bc1aac5ea1a25d796ae155dc228b3f0e11d046ae276b39c4bf2f13d8c4', config: 'sha256:feb5d9fea6a5e9606aa995e879d862b825965ba48de054caab5ef356dc6b3412', platform: 'linux/amd64', layers: 1 },
    verify: { code: 0, errors: 0, warnings: 10, mentions: ['listed but not present'] },
  },
  {
    name: 'oras-go hello-world-prefixed-path.tar: every member starts with ./',
    path: 'oras-project__oras-go/content/oci/testdata/hello-world-prefixed-path.tar',
    tree: { format: 'oci-layout', roots: 1, names: ['docker.io/library/hello-world:latest', 'latest'] },
    inspect: { digest: 'sha256:f54a58bc1aac5ea1a25d796ae155dc228b3f0e11d046ae276b39c4bf2f13d8c4', config: 'sha256:feb5d9fea6a5e9606aa995e879d862b825965ba48de054caab5ef356dc6b3412', platform: 'linux/amd64', layers: 1 },
    verify: { code: 0, errors: 0, warnings: 10 },
  },
  {
    // oras-pushed "images" whose OCI image config has no rootfs (REQUIRED by the image-spec):
    // verify is right to fail; the artifacts themselves read fine.
    name: 'oras zot artifacts: chained referrers, untagged entries; 3 configs without rootfs',
    path: 'oras-project__oras/test/e2e/testdata/zot/command/artifacts',
    tree: { format: 'oci-layout', roots: 12, errors: 0 },
    inspect: { ref: ':foobar', digest: 'sha256:fd6ed2f36b5465244d5dc86cb4e7df0ab8a9d24adc57825099f522fe009a22bb', config: EMPTY, names: ['foobar'], layers: 3 },
    verify: { code: 1, errors: 3, mentions: ['config sha256:fe9dbc99451d: rootfs: missing', 'config sha256:1fd9a5fc54b6: rootfs: missing', 'config sha256:a5dfce5d2876: rootfs: missing'] },
  },
  {
    name: 'oras zot images: empty index, non-JSON config, configs without rootfs',
    path: 'oras-project__oras/test/e2e/testdata/zot/command/images',
    tree: { format: 'oci-layout', roots: 7, errors: 0 },
    inspect: { ref: ':linux-amd64', code: 1, message: 'rootfs: missing' },
    verify: { code: 1, errors: 3, warnings: 1, mentions: ['config sha256:02c15a8d1735: its media type application/vnd.unknown.config.v1+json', 'rootfs: missing'] },
  },

  // ---- google/docker-explorer
  {
    name: 'docker-explorer overlay2.v2.tgz: a Docker data root, not an image archive',
    path: 'google__docker-explorer/test_data/overlay2.v2.tgz',
    reject: { code: 1, message: NOT_AN_IMAGE },
  },

  // ---- GoogleContainerTools/jib
  {
    name: 'jib-image.tar: lowercase manifest.json keys, config.json',
    path: 'GoogleContainerTools__jib/jib-core/src/test/resources/core/extraction/jib-image.tar',
    tree: { format: 'docker-archive', roots: 1, names: ['extraction.test:latest'] },
    inspect: { digest: 'sha256:02d30e8cbeb9fb10873be3a1d4761e06c545f1134fb23eca09c8854b10be2361', config: 'sha256:066872f17ae819f846a6d5abcfc3165abe13fb0a157640fa8cb7af81077670c0', platform: 'linux/amd64', names: ['extraction.test:latest'], layers: 2 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },

  // ---- google/osv-scalibr
  {
    name: 'osv-scalibr symlink-attack: layer symlinks escape the root (reading is still fine)',
    path: 'google__osv-scalibr/artifact/image/layerscanning/image/testdata/symlink-attack.tar',
    tree: { format: 'docker-archive', roots: 1, names: ['symlink-attack:latest'] },
    inspect: { digest: 'sha256:82f12ff558b790c0a1f3f52035cdd1cba50c0807723470895039eb8ed214fc28', config: 'sha256:486f648acb41e8fb98a935c52e091017c1be5fe8c02ad19b9262ea57545019be', platform: 'linux/amd64', layers: 1 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    name: 'osv-scalibr symlink-cycle',
    path: 'google__osv-scalibr/artifact/image/layerscanning/image/testdata/symlink-cycle.tar',
    tree: { format: 'docker-archive', roots: 1, names: ['symlink-cycle:latest'] },
    inspect: { digest: 'sha256:993544da428180f5654391201247b69f11ed20b11f233de0eb39c3f64678c18f', config: 'sha256:373315c779608a5dc71c740b2ef4d68f27c2216b5f7e0520ee15c1d084b9ada2', platform: 'linux/amd64', layers: 1 },
    verify: { code: 0, errors: 0, warnings: 0 },
  },
  {
    name: 'osv-scalibr empty.tar: 10240 zero bytes',
    path: 'google__osv-scalibr/artifact/image/layerscanning/image/testdata/empty.tar',
    reject: { code: 1, message: 'not an image archive' },
  },
  {
    name: 'osv-scalibr escape.tar: absolute member names',
    path: 'google__osv-scalibr/artifact/image/unpack/testdata/escape.tar',
    reject: { code: 1, message: '"/escape/poc.txt": member name is absolute' },
  },
];

/** Every image archive and layout under fixtures/real, relative paths, sorted. */
async function walkFixtures(): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    if (entries.some((e) => e.isFile() && e.name === 'oci-layout')) found.push(path.relative(realFixtures, dir));
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && /\.(tar|tar\.xz|tgz|dockerbuild)$/.test(e.name)) found.push(path.relative(realFixtures, p));
    }
  };
  await walk(realFixtures);
  return found.sort();
}

function collectErrors(n: TreeNodeJson): string[] {
  return [...(n.error ? [n.error] : []), ...n.children.flatMap(collectErrors)];
}

function assertExit(r: CliResult, code: number, what: string): void {
  assert.equal(r.code, code, `${what}: exit ${r.code}, want ${code}\nstdout: ${r.stdout.slice(0, 3000)}\nstderr: ${r.stderr}`);
}

test('the table has one row per fixture found under fixtures/real', async () => {
  const found = await walkFixtures();
  const rows = ROWS.map((r) => r.path).sort();
  assert.deepEqual(rows, [...new Set(rows)], 'duplicate rows');
  assert.deepEqual(rows, found, 'rows and fixtures differ: add a row for each new fixture');
});

describe('every real fixture through tree, inspect and verify', () => {
  for (const row of ROWS) {
    test(row.name, row.todo ? { todo: row.todo } : {}, async () => {
      const p = fixture(row.path);
      if (row.reject) {
        for (const cmd of ['tree', 'inspect', 'verify']) {
          const r = await berth(cmd, p);
          assertExit(r, row.reject.code, `${cmd} ${row.path}`);
          assertCleanError(r, `${cmd} ${row.path}`);
          assert.ok(r.stderr.includes(row.reject.message), `${cmd} ${row.path}: want "${row.reject.message}" in: ${r.stderr}`);
        }
        return;
      }
      if (row.tree) {
        const r = await berth('tree', '--format', 'json', p);
        assertExit(r, 0, `tree ${row.path}`);
        const t = json<TreeJson>(r, 'tree');
        assert.equal(t.format, row.tree.format, 'format');
        assert.equal(t.tree.children.length, row.tree.roots, 'roots');
        if (row.tree.names) assert.deepEqual(t.tree.children.flatMap((c) => c.names ?? []), row.tree.names, 'root names');
        if (row.tree.errors !== undefined) assert.deepEqual(collectErrors(t.tree), [], 'tree node errors');
        const text = await berth('tree', p);
        assertExit(text, 0, `tree (text) ${row.path}`);
      }
      if (row.inspect) {
        const ref = p + (row.inspect.ref ?? '');
        const r = await berth('inspect', '--format', 'json', ref);
        if ('code' in row.inspect) {
          assertExit(r, row.inspect.code, `inspect ${ref}`);
          assertCleanError(r, `inspect ${ref}`);
          assert.ok(r.stderr.includes(row.inspect.message), `inspect: want "${row.inspect.message}" in: ${r.stderr}`);
        } else {
          assertExit(r, 0, `inspect ${ref}`);
          const i = json<InspectJson>(r, 'inspect');
          assert.equal(i.digest, row.inspect.digest, 'manifest digest');
          assert.equal(i.configDigest, row.inspect.config, 'config digest');
          if (row.inspect.platform !== undefined) assert.equal(i.platform ?? null, row.inspect.platform, 'platform');
          if (row.inspect.names) assert.deepEqual(i.names, row.inspect.names, 'names');
          assert.equal(i.layers.length, row.inspect.layers, 'layer count');
          if (row.inspect.kind !== undefined) assert.equal(i.kind, row.inspect.kind, 'kind');
        }
      }
      if (row.verify) {
        const r = await berth('verify', '--format', 'json', p);
        assertExit(r, row.verify.code, `verify ${row.path}`);
        assert.doesNotMatch(r.stderr, STACK_LINE);
        const v = json<VerifyJson>(r, 'verify');
        assert.equal(v.ok, row.verify.code === 0, 'ok');
        const errors = v.problems.filter((x) => x.severity === 'error');
        const warnings = v.problems.filter((x) => x.severity === 'warning');
        const all = v.problems.map((x) => `${x.severity}: ${x.subject}: ${x.message}`).join('\n');
        if (row.verify.errors !== undefined) assert.equal(errors.length, row.verify.errors, `errors:\n${all}`);
        if (row.verify.warnings !== undefined) assert.equal(warnings.length, row.verify.warnings, `warnings:\n${all}`);
        for (const m of row.verify.mentions ?? []) assert.ok(all.includes(m), `want "${m}" among the problems:\n${all}`);
        if (row.verify.never) assert.doesNotMatch(all, row.verify.never);
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Damaged copies, one fixture per kind.

interface Kind {
  readonly name: string;
  readonly path: string;
  /** blobs to damage: a label, how to find the blob's digest, and where its bytes live */
  readonly blobs: ReadonlyArray<{ readonly label: string; readonly digest: string; readonly member: string; readonly todo?: string }>;
}

/** Blob file name inside a layout or archive. */
const blobPath = (digest: string): string => `blobs/sha256/${digest.slice('sha256:'.length)}`;

const MP = 'anchore__stereoscope/pkg/image/oci/testdata/multiplatform_oci_dir';
const KINDS: readonly Kind[] = [
  {
    name: 'OCI layout dir',
    path: MP,
    blobs: [
      { label: 'nested index', digest: 'sha256:a1a8d08faa5fe3d2ccc0ba54874e39dede9a17120f883c5cb56f2fd9309067c8', member: '' },
      { label: 'manifest', digest: 'sha256:5ed07065bcbc6c52e3ad28526557d7b6833613fc79257b1a786de85e37c03b05', member: '' },
      { label: 'config', digest: 'sha256:549248a7ac95478805d9248e4ffdc778fc2404257d8c071848746e0100e08099', member: '' },
      { label: 'layer (gzip)', digest: 'sha256:9795e995b4d86eb9409970bc5bff940f0d67a54e8f52dd39abb8c6504187af89', member: '' },
    ],
  },
  {
    name: 'oci-archive tar',
    path: 'wagoodman__dive/.data/test-oci-gzip-image.tar',
    blobs: [
      { label: 'manifest', digest: 'sha256:7d255e9e3d216a9a92a5c1ce0563a5ddd92f28a34a9df025d3cf8dfa5ea08366', member: '' },
      { label: 'config', digest: 'sha256:3eaccc100f866490f00ae82727b459a737af031dcf44c791d8aa714a70f24959', member: '' },
      { label: 'layer (gzip)', digest: 'sha256:9aef42427209c9a180c61bb36b0b09681cbe3d3ff6409408bde0eb17ec1ba0cc', member: '' },
    ],
  },
  {
    name: 'legacy docker-archive',
    path: 'containers__image/docker/archive/fixtures/almostempty.tar',
    blobs: [
      { label: 'config', digest: 'sha256:9d7f147c0d0c4d4538a04c7ef385809e56eb1aac7bf800fbe976612188025b68', member: '9d7f147c0d0c4d4538a04c7ef385809e56eb1aac7bf800fbe976612188025b68.json' },
      // a legacy layer is named by its diff_id
      { label: 'layer', digest: 'sha256:0b916d257bd4', member: 'c7b98db321d22702b8dd264fa7d58936951867854969a873d3dd20520eadca8f/layer.tar' },
    ],
  },
  {
    name: 'Docker 25 archive',
    path: 'snyk__snyk-docker-plugin/test/fixtures/docker-archives/docker-save/hello-world.tar',
    blobs: [
      { label: 'manifest', digest: 'sha256:8876a860b8c40b280440ed7678ba677f5a3cb972fddde4198a9a5e159184732f', member: '' },
      { label: 'config', digest: 'sha256:d2c94e258dcb3c5ac2798d32e1249e42ef01cba4841c2234249495f87264ac5a', member: '' },
      { label: 'layer', digest: 'sha256:ac28800ec8bb38d5c35b49d45a6ac4777544941199075dff8c4eb63e093aa81e', member: '' },
    ],
  },
  {
    name: 'xz-compressed legacy docker-archive',
    path: 'containers__skopeo/systemtest/testdata/docker-two-images.tar.xz',
    blobs: [
      { label: 'config', digest: 'sha256:5a7ef13e1893f2f91d29b3c2b9224e771a57c48ff6fe8d2aee91f3f91062fa2a', member: '5a7ef13e1893f2f91d29b3c2b9224e771a57c48ff6fe8d2aee91f3f91062fa2a.json' },
      { label: 'layer (shared by both images through a symlink)', digest: 'sha256:dcbaa840b888', member: '9e716152053e039ca3e6d9bbdfb8c5fe346182f630428ba1b5be31929f167c2d/layer.tar' },
    ],
  },
  {
    name: 'gzip-compressed OCI archive (.dockerbuild)',
    path: 'docker__actions-toolkit/__tests__/.fixtures/oci-archive/docker~test-docker-action~COIO50.dockerbuild',
    blobs: [
      { label: 'manifest', digest: 'sha256:ae5eb5cef8f241ea0518a4d6831a835b942bd4fc8ae3af8a730461716539b79a', member: '' },
      { label: 'config', digest: 'sha256:063472d6b612b4cfc2a1be73a1e7d86951d31caa28ba27347b46998935a34a20', member: '' },
      { label: 'layer', digest: 'sha256:ad9494e4a18a2fa1b151467d4b1594a9bbb32f6611010da7962cadb07f56ba2e', member: '' },
    ],
  },
];

/** Resolves a promise or fails after `ms` (a hang must fail the test, not stall the suite). */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms (hang?)`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('a flipped byte in one blob makes verify fail and name that blob', () => {
  let tmp: string;
  before(async () => {
    tmp = await tempDir('berth-flip-');
  });
  after(async () => {
    await removeDir(tmp);
  });

  for (const kind of KINDS) {
    for (const blob of kind.blobs) {
      test(`${kind.name}: ${blob.label}`, blob.todo ? { todo: blob.todo } : {}, async () => {
        const dir = await tempDir('f-', tmp);
        try {
          const copy = await copyFixture(fixture(kind.path), dir);
          const isDir = (await stat(copy)).isDirectory();
          const member = blob.member || blobPath(blob.digest);
          if (isDir) {
            await flipInFile(path.join(copy, member));
          } else {
            // sanity: the member holds the blob we mean (legacy layers: their diff_id)
            const before = await memberBytes(copy, member);
            assert.ok(sha256(before).startsWith(blob.digest), `${member} of ${kind.path} is not ${blob.digest}`);
            await flipInArchive(copy, member);
          }
          const r = await within(20_000, `verify ${kind.path}`, berth('verify', copy));
          assertExit(r, 1, `verify of ${kind.name} with a flipped ${blob.label}`);
          assert.doesNotMatch(r.stderr, STACK_LINE);
          const lines = r.stdout.split('\n').filter((l) => l.startsWith('error: ') && l.includes(short(blob.digest)));
          assert.ok(lines.length > 0, `want an error line naming ${short(blob.digest)}:\n${r.stdout}${r.stderr}`);
          assert.match(r.stdout, /^FAILED: /m);
        } finally {
          await removeDir(dir);
        }
      });
    }
  }
});

describe('a truncated archive fails cleanly: exit 1, one line or a verify failure, no stack, no hang', () => {
  let tmp: string;
  before(async () => {
    tmp = await tempDir('berth-cut-');
  });
  after(async () => {
    await removeDir(tmp);
  });

  /** Offsets to cut at, computed from the (uncompressed) tar's member index. */
  interface Cut {
    readonly label: string;
    readonly at: (tar: Buffer, size: number) => number;
    /** every member is intact: exit 0 is allowed (GNU tar reads such a file without complaint) */
    readonly mayPass?: boolean;
  }
  const largest = (tar: Buffer) => tarMembers(tar).reduce((a, b) => (b.size > a.size ? b : a));
  const last = (tar: Buffer) => tarMembers(tar).at(-1)!;
  const CUTS_PLAIN: readonly Cut[] = [
    { label: 'inside the first header', at: () => 100 },
    { label: 'inside the header of the last member', at: (tar) => last(tar).headerOffset + 300 },
    { label: 'inside the largest blob (a layer)', at: (tar) => { const m = largest(tar); return m.dataOffset + Math.floor(m.size / 2); } },
    { label: 'one byte before the end of the last member', at: (tar) => { const m = last(tar); return m.dataOffset + Math.max(m.size - 1, 0); } },
    { label: 'inside the end-of-archive blocks', at: (tar) => { const m = last(tar); return m.dataOffset + Math.ceil(m.size / 512) * 512 + 100; }, mayPass: true },
  ];
  const CUTS_COMPRESSED: readonly Cut[] = [
    { label: 'inside the compression header', at: () => 5 },
    { label: 'in the middle of the compressed stream', at: (_tar, size) => Math.floor(size / 2) },
    { label: 'four bytes before the end (the trailer)', at: (_tar, size) => size - 4 },
  ];

  for (const kind of KINDS.filter((k) => !k.path.endsWith('_dir'))) {
    const compressed = /\.(xz|dockerbuild)$/.test(kind.path);
    for (const cut of compressed ? CUTS_COMPRESSED : CUTS_PLAIN) {
      test(`${kind.name}: cut ${cut.label}`, async () => {
        const dir = await tempDir('c-', tmp);
        try {
          const copy = await copyFixture(fixture(kind.path), dir);
          const { tar } = await readTar(copy);
          const size = (await readFile(copy)).length;
          const at = cut.at(tar, size);
          assert.ok(at > 0 && at < size, `cut offset ${at} outside 0..${size}`);
          await truncateAt(copy, at);
          for (const cmd of ['tree', 'inspect', 'verify']) {
            const args = cmd === 'inspect' && kind.path.endsWith('.tar.xz') ? [`${copy}:@0`] : [copy];
            const r = await within(20_000, `${cmd} ${kind.path} cut at ${at}`, berth(cmd, ...args));
            assert.doesNotMatch(r.stderr, STACK_LINE, `${cmd}: stack trace`);
            if (cmd === 'verify' && cut.mayPass !== true) {
              assertExit(r, 1, `verify of ${kind.name} cut at ${at} of ${size}`);
            }
            if (r.code !== 0) {
              assert.equal(r.code, 1, `${cmd}: exit ${r.code}: ${r.stderr}`);
              if (r.stderr !== '') assertCleanError(r, `${cmd} cut at ${at}`);
              else assert.match(r.stdout, /^FAILED: /m, `${cmd}: exit 1 with neither an error line nor a FAILED report`);
            }
          }
        } finally {
          await removeDir(dir);
        }
      });
    }
  }
});
