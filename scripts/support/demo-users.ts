/** The local identity provider's demo users. All sign in with the password `latchkey`. */
export interface DemoUser {
  email: string;
  name: string;
  groups: string[];
}

export const DEMO_PASSWORD = "latchkey";

export const DEMO_USERS: readonly DemoUser[] = [
  { email: "alice@example.com", name: "Alice Engineer", groups: ["engineering"] },
  { email: "bob@example.com", name: "Bob Lead", groups: ["engineering-leads"] },
  { email: "carol@example.com", name: "Carol Auditor", groups: ["audit"] },
  { email: "dave@example.com", name: "Dave Admin", groups: ["platform-admins"] },
];
