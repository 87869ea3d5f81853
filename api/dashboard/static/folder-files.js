// The files of folders the user dropped or picked, each with its path ("parts/bolt/1.png"), for
// tar.js to pack. A drop gives FileSystemEntry trees (walked here); a `webkitdirectory` picker
// gives Files with `webkitRelativePath`.

// A directory's entries: readEntries answers in batches until it answers an empty one.
function readAll(dir) {
  const reader = dir.createReader();
  const all = [];
  return new Promise((resolve, reject) => {
    const next = () => reader.readEntries((batch) => {
      if (!batch.length) return resolve(all);
      all.push(...batch);
      next();
    }, reject);
    next();
  });
}

const fileOf = (entry) => new Promise((resolve, reject) => entry.file(resolve, reject));

async function walk(entry, prefix, out) {
  const path = prefix + entry.name;
  if (entry.isFile) {
    out.push({ path, file: await fileOf(entry) });
  } else if (entry.isDirectory) {
    for (const child of await readAll(entry)) await walk(child, `${path}/`, out);
  }
}

// What a drop holds: {folders: true, entries: [{path, file}]} when it holds a folder (every
// dropped folder and file then goes in, at the archive's root), else {folders: false, files}.
// Call it inside the drop handler: the DataTransfer's items are gone once the event returns,
// so their entries are taken before the first await.
export function dropped(dataTransfer) {
  const roots = [...dataTransfer.items]
    .filter((item) => item.kind === "file")
    .map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null));
  const files = [...dataTransfer.files];
  if (!roots.some((e) => e && e.isDirectory)) return Promise.resolve({ folders: false, files });
  return (async () => {
    const entries = [];
    for (const root of roots.filter(Boolean)) await walk(root, "", entries);
    return { folders: true, entries };
  })();
}

// A `webkitdirectory` input's files, with the paths the browser gives them (under the folder's name).
export const picked = (fileList) =>
  [...fileList].map((file) => ({ path: file.webkitRelativePath || file.name, file }));
