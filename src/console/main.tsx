/** Entry of the web console: mounts the application on the page served at /console. */
import { render } from "preact";
import { App } from "./app.tsx";

render(<App />, document.getElementById("console")!);
