// The cnnlab dashboard: a single page with hash routes, one view module per page.
//   #/signin            view-signin.js      #/jobs              view-jobs.js (live list)
//   #/new               view-new.js         #/jobs/ID           view-job.js (+ view-predict.js)
//   #/searches          view-searches.js    #/searches/ID       view-search.js (live)
import * as api from "./api.js";
import { start } from "./router.js";
import jobPage from "./view-job.js";
import jobsPage from "./view-jobs.js";
import newRun from "./view-new.js";
import searchPage from "./view-search.js";
import searchesPage from "./view-searches.js";
import signIn, { signInAgain } from "./view-signin.js";

api.setUnauthorizedHandler(() => signInAgain("The server did not accept the token."));
document.getElementById("signout").addEventListener("click", () => signInAgain());

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
  ],
});
