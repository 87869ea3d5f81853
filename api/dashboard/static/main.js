// The cnnlab dashboard: a single page with hash routes, one view module per page.
//   #/signin            view-signin.js      #/jobs              view-jobs.js (live list)
//   #/new               view-new.js         #/jobs/ID           view-job.js (+ view-predict.js)
//   #/searches          view-searches.js    #/searches/ID       view-search.js (live)
//   #/models            view-models.js      #/models/NAME       view-model.js
//   #/datasets          view-datasets.js    #/datasets/NAME     view-datasets.js
//   #/compare?ids=A,B   view-compare.js (jobs picked on #/jobs, side by side)
import * as api from "./api.js";
import { start } from "./router.js";
import comparePage from "./view-compare.js";
import datasetsPage, { datasetPage } from "./view-datasets.js";
import jobPage from "./view-job.js";
import jobsPage from "./view-jobs.js";
import modelPage from "./view-model.js";
import modelsPage from "./view-models.js";
import newRun from "./view-new.js";
import searchPage from "./view-search.js";
import searchesPage from "./view-searches.js";
import signIn, { signInAgain } from "./view-signin.js";

api.setUnauthorizedHandler(() => signInAgain("The server did not accept the token."));
document.getElementById("signout").addEventListener("click", () => signInAgain());

// A view given its route's captured part decoded ("%2E" is "."); a malformed escape as typed.
const decoded = (view) => (main, part) => {
  let value = part;
  try { value = decodeURIComponent(part); } catch { /* not an escape: the name as typed */ }
  return view(main, value);
};

start({
  signIn: "#/signin",
  home: "#/jobs",
  routes: [
    [/^#\/signin$/, signIn],
    [/^#\/new$/, newRun],
    [/^#\/jobs\/(\w+)$/, jobPage],
    [/^#\/searches$/, searchesPage],
    [/^#\/searches\/(\w+)$/, searchPage],
    [/^#\/jobs$/, jobsPage],
    [/^#\/compare\?ids=([\w,]+)$/, comparePage],
    [/^#\/models$/, modelsPage],
    [/^#\/models\/([^/?#]+)$/, decoded(modelPage)],
    [/^#\/datasets$/, datasetsPage],
    [/^#\/datasets\/([^/?#]+)$/, decoded(datasetPage)],
  ],
});
